import Foundation

/// Linux C functions the Glibc module does not declare, looked up once by name (nil on other systems).
public enum LinuxCalls {
    typealias CopyFileRange =
        @convention(c) (Int32, UnsafeMutablePointer<Int>?, Int32, UnsafeMutablePointer<Int>?, Int, UInt32) -> Int
    typealias MallocTrim = @convention(c) (Int) -> Int32

    /// `copy_file_range(2)`: a file copied inside the kernel.
    static let copyFileRange: CopyFileRange? = symbol("copy_file_range", as: CopyFileRange.self)
    private static let mallocTrim: MallocTrim? = symbol("malloc_trim", as: MallocTrim.self)

    /// Gives the pages malloc keeps after a large transient workload (a bulk export) back to the system.
    public static func trimMallocHeap() {
        _ = mallocTrim?(0)
    }

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        #if os(Linux)
        guard let pointer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(pointer, to: type)
        #else
        return nil
        #endif
    }
}
