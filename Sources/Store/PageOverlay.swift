import Foundation
import GRDBSQLite
import Synchronization

/// A database file that reads the pages it never wrote from a read-only base file (a prebuilt national dataset) and
/// keeps the pages it writes in a file of its own: a new data folder over a 3 GB dataset is ready at once, several
/// folders share one base, and nothing a client writes reaches the base.
///
/// It is an SQLite VFS (`esante-overlay`, registered as the process's default so GRDB's connections use it) that
/// hands every file to SQLite's own `unix` VFS, except the main database files ``attach(database:)`` was told of:
/// their reads, writes, size and sync go through ``PageOverlayFile``; locking and the WAL index stay `unix`'s, on the
/// overlay file. SQLite offers no copy-on-write of its own, and `ext4` (the usual Linux file system) no reflink.
///
/// On disk, beside the database path `P`:
/// - `P` holds the written pages, each at its offset in the database **plus one page**: the first page of `P` is a
///   notice, so the `sqlite3` shell refuses the file ("file is not a database") instead of reading holes;
/// - `P-pages` (``PageOverlayMap``) names the base (path, size, inode, modification time: a base that changed is
///   refused), the database's size, and one byte per page: 1 when `P` holds that page.
public enum PageOverlay {
    public static let vfsName = "esante-overlay"

    /// The map file of the database at `path`.
    public static func mapPath(database path: String) -> String { path + "-pages" }

    /// Whether the database at `path` is an overlay (its map exists).
    public static func isOverlay(database path: String) -> Bool {
        FileManager.default.fileExists(atPath: mapPath(database: path))
    }

    /// Creates the overlay database `path` (which must not exist) over `base`, empty: it reads as the base.
    public static func create(database path: String, base: String) throws {
        let map = try PageOverlayMap.create(path: mapPath(database: path), base: base)
        let notice = Data(
            "esante-sandbox page overlay over \(base): open it with esante-sandbox (a SQLite VFS), not sqlite3\n".utf8
        )
        var page = [UInt8](repeating: 0, count: map.pageSize)
        page.replaceSubrange(0..<min(notice.count, page.count), with: notice.prefix(page.count))
        let file = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        defer { if file >= 0 { close(file) } }
        guard file >= 0, write(file, page, page.count) == page.count else {
            let reason = String(cString: strerror(errno))
            unlink(mapPath(database: path))
            throw StoreError("cannot create \(path): \(reason)")
        }
    }

    /// Makes the database at `path`, when it is an overlay, openable by SQLite in this process (idempotent): checks
    /// its base. A plain database file is left to SQLite.
    public static func attachIfOverlay(database path: String) throws {
        guard isOverlay(database: path) else { return }
        registerVFS
        let key = canonical(path)
        try registry.withLock { files in
            if files[key] == nil { files[key] = try PageOverlayMap.open(path: mapPath(database: path)) }
        }
    }

    /// The path SQLite's `unix` VFS names a database by (symbolic links resolved).
    static func canonical(_ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        guard let resolved = realpath(folder.isEmpty ? "." : folder, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved) + "/" + name
    }

    static let registry = Mutex<[String: PageOverlayMap]>([:])

    static func map(forDatabase name: String) -> PageOverlayMap? {
        registry.withLock { $0[name] }
    }

    /// SQLite's `unix` VFS, which does everything but the overlay's page I/O.
    nonisolated(unsafe) static var unixVFS: UnsafeMutablePointer<sqlite3_vfs>!

    /// Bytes before the `unix` file inside an overlay file's structure: SQLite's `sqlite3_file` header and the map.
    static let headerSize = MemoryLayout<sqlite3_file>.stride + MemoryLayout<UnsafeMutableRawPointer>.stride

    private static let registerVFS: Void = {
        unixVFS = sqlite3_vfs_find(nil)
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: unixVFS.pointee)
        vfs.pointee.zName = UnsafePointer(strdup(vfsName))
        vfs.pointee.szOsFile = Int32(headerSize) + unixVFS.pointee.szOsFile
        vfs.pointee.pNext = nil
        vfs.pointee.xOpen = { _, name, file, flags, outFlags in
            guard let file else { return SQLITE_MISUSE }
            let isMain = flags & SQLITE_OPEN_MAIN_DB != 0
            guard isMain, let name, let map = PageOverlay.map(forDatabase: String(cString: name)) else {
                return PageOverlay.unixVFS.pointee.xOpen(PageOverlay.unixVFS, name, file, flags, outFlags)
            }
            let unixFile = PageOverlayFile.unixFile(file)
            let code = PageOverlay.unixVFS.pointee.xOpen(PageOverlay.unixVFS, name, unixFile, flags, outFlags)
            guard code == SQLITE_OK else {
                file.pointee.pMethods = nil  // SQLite calls no method of a file that failed to open
                return code
            }
            PageOverlayFile.mapSlot(file).storeBytes(
                of: Unmanaged.passRetained(map).toOpaque(),
                as: UnsafeMutableRawPointer.self
            )
            file.pointee.pMethods = UnsafePointer(PageOverlayFile.methods)
            return SQLITE_OK
        }
        sqlite3_vfs_register(vfs, 1)
    }()
}

/// The map of an overlay database (`P-pages`), shared through `mmap` by every connection of every process that opens
/// it: a page the checkpoint moved into the overlay is read from there by the next reader at once.
final class PageOverlayMap: @unchecked Sendable {
    static let magic: UInt64 = 0x3130_4C56_4F42_5345  // "ESBOVL01"
    /// Header bytes before the page bytes.
    static let headerSize = 4096
    /// Pages the map can mark: 256 GiB of 4 KiB pages (the file is sparse: untouched bytes take no space).
    static let capacity = 1 << 26

    let pageSize: Int
    let base: Int32
    let map: UnsafeMutableRawPointer
    let length: Int

    private init(pageSize: Int, base: Int32, map: UnsafeMutableRawPointer, length: Int) {
        self.pageSize = pageSize
        self.base = base
        self.map = map
        self.length = length
    }

    deinit {
        munmap(map, length)
        close(base)
    }

    /// The database's size in bytes (SQLite's `xFileSize`).
    var size: Int64 {
        get { map.advanced(by: 8).load(as: Int64.self) }
        set { map.advanced(by: 8).storeBytes(of: newValue, as: Int64.self) }
    }

    /// Whether the overlay file holds page `index` (else it is the base's, or zeros past the base's end).
    func holds(_ index: Int) -> Bool {
        index < Self.capacity && map.load(fromByteOffset: Self.headerSize + index, as: UInt8.self) != 0
    }

    func mark(_ index: Int) throws {
        guard index < Self.capacity else { throw StoreError("the page overlay is full (\(Self.capacity) pages)") }
        map.storeBytes(of: 1, toByteOffset: Self.headerSize + index, as: UInt8.self)
    }

    /// Writes the map to disk (the overlay's `xSync`, after its pages).
    func sync() -> Bool { msync(map, length, MS_SYNC) == 0 }

    struct BaseIdentity: Equatable {
        var size: Int64, inode: UInt64, device: UInt64, modified: Int64, modifiedNanoseconds: Int64

        init(_ info: stat) {
            size = Int64(info.st_size)
            inode = UInt64(info.st_ino)
            device = UInt64(info.st_dev)
            modified = Int64(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        }

        init(_ map: UnsafeMutableRawPointer) {
            size = map.load(fromByteOffset: 24, as: Int64.self)
            inode = map.load(fromByteOffset: 32, as: UInt64.self)
            device = map.load(fromByteOffset: 40, as: UInt64.self)
            modified = map.load(fromByteOffset: 48, as: Int64.self)
            modifiedNanoseconds = map.load(fromByteOffset: 56, as: Int64.self)
        }

        func store(_ map: UnsafeMutableRawPointer) {
            map.storeBytes(of: size, toByteOffset: 24, as: Int64.self)
            map.storeBytes(of: inode, toByteOffset: 32, as: UInt64.self)
            map.storeBytes(of: device, toByteOffset: 40, as: UInt64.self)
            map.storeBytes(of: modified, toByteOffset: 48, as: Int64.self)
            map.storeBytes(of: modifiedNanoseconds, toByteOffset: 56, as: Int64.self)
        }
    }

    /// A new map over `base`: the base's identity and page size, its size as the database's.
    static func create(path: String, base: String) throws -> PageOverlayMap {
        let basePath = PageOverlay.canonical(base)
        let descriptor = Foundation.open(basePath, O_RDONLY)
        guard descriptor >= 0 else { throw StoreError("cannot read \(base): \(String(cString: strerror(errno)))") }
        var info = stat()
        var header = [UInt8](repeating: 0, count: 100)
        guard fstat(descriptor, &info) == 0, pread(descriptor, &header, 100, 0) == 100,
            header.starts(with: Array("SQLite format 3\0".utf8))
        else {
            close(descriptor)
            throw StoreError("\(base) is not a SQLite database")
        }
        close(descriptor)
        let rawPageSize = Int(header[16]) << 8 | Int(header[17])
        let pathBytes = Array(basePath.utf8)
        guard pathBytes.count < headerSize - 128 else { throw StoreError("\(base): path too long") }
        let file = Foundation.open(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
        guard file >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(file) }
        guard ftruncate(file, off_t(headerSize + capacity)) == 0 else {
            unlink(path)
            throw StoreError("cannot size \(path): \(String(cString: strerror(errno)))")
        }
        var page = [UInt8](repeating: 0, count: headerSize)
        page.withUnsafeMutableBytes { raw in
            let header = raw.baseAddress!
            header.storeBytes(of: magic, as: UInt64.self)
            header.storeBytes(of: Int64(info.st_size), toByteOffset: 8, as: Int64.self)
            header.storeBytes(of: Int64(rawPageSize == 1 ? 65536 : rawPageSize), toByteOffset: 16, as: Int64.self)
            BaseIdentity(info).store(header)
            header.storeBytes(of: UInt32(pathBytes.count), toByteOffset: 64, as: UInt32.self)
            header.advanced(by: 68).copyMemory(from: pathBytes, byteCount: pathBytes.count)
        }
        guard pwrite(file, page, headerSize, 0) == headerSize, fsync(file) == 0 else {
            unlink(path)
            throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return try open(path: path)
    }

    /// Maps an existing map file and opens its base, which must be the very file it was made over.
    static func open(path: String) throws -> PageOverlayMap {
        let file = Foundation.open(path, O_RDWR)
        guard file >= 0 else { throw StoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(file) }
        let length = headerSize + capacity
        guard let map = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0), map != MAP_FAILED else {
            throw StoreError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        guard map.load(as: UInt64.self) == magic else {
            munmap(map, length)
            throw StoreError("\(path) is not a page overlay map")
        }
        let pathLength = Int(map.load(fromByteOffset: 64, as: UInt32.self))
        let basePath = String(decoding: UnsafeRawBufferPointer(start: map + 68, count: pathLength), as: UTF8.self)
        let base = Foundation.open(basePath, O_RDONLY)
        var info = stat()
        guard base >= 0, fstat(base, &info) == 0 else {
            munmap(map, length)
            throw StoreError("the prebuilt database this data folder stands on is gone: \(basePath)")
        }
        guard BaseIdentity(info) == BaseIdentity(map) else {
            close(base)
            munmap(map, length)
            throw StoreError(
                "the prebuilt database this data folder stands on changed since (\(basePath)): remove the data folder to start over from it"
            )
        }
        let pageSize = Int(map.load(fromByteOffset: 16, as: Int64.self))
        return PageOverlayMap(pageSize: pageSize, base: base, map: map, length: length)
    }
}

/// The I/O methods of an overlay database file. Its structure (SQLite allocates `szOsFile` bytes): SQLite's
/// `sqlite3_file` (the methods pointer), the retained ``PageOverlayMap``, then the `unix` file of the overlay.
enum PageOverlayFile {
    // SQLite's extended result codes are macros Swift does not import.
    static let shortRead = SQLITE_IOERR | (2 << 8)
    static let readError = SQLITE_IOERR | (1 << 8)
    static let syncError = SQLITE_IOERR | (4 << 8)

    static func unixFile(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        UnsafeMutableRawPointer(file).advanced(by: PageOverlay.headerSize).assumingMemoryBound(to: sqlite3_file.self)
    }

    /// Where the retained map's pointer lies: right after SQLite's `sqlite3_file` header.
    static func mapSlot(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(file).advanced(by: MemoryLayout<sqlite3_file>.stride)
    }

    static func mapReference(_ file: UnsafeMutablePointer<sqlite3_file>?) -> Unmanaged<PageOverlayMap> {
        Unmanaged<PageOverlayMap>.fromOpaque(mapSlot(file!).load(as: UnsafeMutableRawPointer.self))
    }

    static func map(_ file: UnsafeMutablePointer<sqlite3_file>?) -> PageOverlayMap {
        mapReference(file).takeUnretainedValue()
    }

    /// The `unix` file's methods, called on the `unix` file.
    static func unix(
        _ file: UnsafeMutablePointer<sqlite3_file>?
    ) -> (
        file: UnsafeMutablePointer<sqlite3_file>, methods: sqlite3_io_methods
    ) {
        let inner = unixFile(file!)
        return (inner, inner.pointee.pMethods.pointee)
    }

    /// The map and the `unix` file with its methods: what the page I/O methods work with.
    static func parts(
        _ file: UnsafeMutablePointer<sqlite3_file>?
    ) -> (map: PageOverlayMap, inner: UnsafeMutablePointer<sqlite3_file>, methods: sqlite3_io_methods) {
        let (inner, methods) = unix(file)
        return (map(file), inner, methods)
    }

    /// Calls `body` for each page `count` bytes at `offset` touch: the page, the offset in it, the bytes in it, and
    /// the bytes before it; stops at the first code that is not `SQLITE_OK`.
    static func forEachPage(
        _ offset: Int64,
        _ count: Int,
        pageSize: Int,
        _ body: (_ page: Int, _ within: Int, _ length: Int, _ done: Int) -> Int32
    ) -> Int32 {
        var done = 0
        while done < count {
            let position = offset + Int64(done)
            let within = Int(position % Int64(pageSize))
            let length = min(count - done, pageSize - within)
            let code = body(Int(position / Int64(pageSize)), within, length, done)
            guard code == SQLITE_OK else { return code }
            done += length
        }
        return SQLITE_OK
    }

    /// Reads `count` bytes at `offset` of the database, each page from where it is; past the database's end, zeros
    /// and SQLite's short-read code (as its `unix` VFS does).
    static func read(
        _ file: UnsafeMutablePointer<sqlite3_file>?,
        _ buffer: UnsafeMutableRawPointer,
        _ count: Int,
        _ offset: Int64
    ) -> Int32 {
        let (map, inner, methods) = parts(file)
        let size = map.size
        let available = Int(max(0, min(Int64(count), size - offset)))
        let code = forEachPage(offset, available, pageSize: map.pageSize) { page, within, length, done in
            let position = Int64(page) * Int64(map.pageSize) + Int64(within)
            if map.holds(page) {
                let code = methods.xRead(inner, buffer + done, Int32(length), position + Int64(map.pageSize))
                return code == shortRead ? SQLITE_OK : code
            }
            var got = 0
            while got < length {
                let n = pread(map.base, buffer + done + got, length - got, off_t(position) + off_t(got))
                if n < 0, errno == EINTR { continue }
                if n < 0 { return readError }
                if n == 0 {
                    // Past the base's end: a page the database grew by and never wrote reads as zeros.
                    memset(buffer + done + got, 0, length - got)
                    break
                }
                got += n
            }
            return SQLITE_OK
        }
        guard code == SQLITE_OK else { return code }
        guard available == count else {
            memset(buffer + available, 0, count - available)
            return shortRead
        }
        return SQLITE_OK
    }

    /// Writes `count` bytes at `offset` into the overlay, whole pages: a page written in part is completed from
    /// where it was read before.
    static func write(
        _ file: UnsafeMutablePointer<sqlite3_file>?,
        _ buffer: UnsafeRawPointer,
        _ count: Int,
        _ offset: Int64
    ) -> Int32 {
        let (map, inner, methods) = parts(file)
        let pageSize = map.pageSize
        let code = forEachPage(offset, count, pageSize: pageSize) { page, within, length, done in
            let target = Int64(page + 1) * Int64(pageSize)
            var code: Int32
            if length == pageSize || map.holds(page) {
                code = methods.xWrite(inner, buffer + done, Int32(length), target + Int64(within))
            } else {
                let whole = UnsafeMutableRawPointer.allocate(byteCount: pageSize, alignment: 16)
                defer { whole.deallocate() }
                code = read(file, whole, pageSize, Int64(page) * Int64(pageSize))
                guard code == SQLITE_OK || code == shortRead else { return code }
                (whole + within).copyMemory(from: buffer + done, byteCount: length)
                code = methods.xWrite(inner, whole, Int32(pageSize), target)
            }
            guard code == SQLITE_OK else { return code }
            do { try map.mark(page) } catch { return SQLITE_FULL }
            return SQLITE_OK
        }
        guard code == SQLITE_OK else { return code }
        if offset + Int64(count) > map.size { map.size = offset + Int64(count) }
        return SQLITE_OK
    }

    nonisolated(unsafe) static let methods: UnsafeMutablePointer<sqlite3_io_methods> = {
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: sqlite3_io_methods())
        // Version 2: no `xFetch`, so SQLite never memory-maps the overlay file (its pages are not the database's).
        methods.pointee.iVersion = 2
        methods.pointee.xClose = { file in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            let code = unixMethods.xClose(inner)
            PageOverlayFile.mapReference(file).release()
            return code
        }
        methods.pointee.xRead = { file, buffer, count, offset in
            PageOverlayFile.read(file, buffer!, Int(count), offset)
        }
        methods.pointee.xWrite = { file, buffer, count, offset in
            PageOverlayFile.write(file, buffer!, Int(count), offset)
        }
        methods.pointee.xTruncate = { file, size in
            let (map, inner, unixMethods) = PageOverlayFile.parts(file)
            let pageSize = Int64(map.pageSize)
            let code = unixMethods.xTruncate(inner, size + pageSize)
            guard code == SQLITE_OK else { return code }
            // The pages cut off read as zeros if the database grows again, as a truncated file's would.
            let first = Int((size + pageSize - 1) / pageSize)
            let last = Int((map.size + pageSize - 1) / pageSize)
            if first < last { for page in first..<last { try? map.mark(page) } }
            map.size = size
            return SQLITE_OK
        }
        methods.pointee.xSync = { file, flags in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            let code = unixMethods.xSync(inner, flags)
            guard code == SQLITE_OK else { return code }
            return PageOverlayFile.map(file).sync() ? SQLITE_OK : PageOverlayFile.syncError
        }
        methods.pointee.xFileSize = { file, size in
            size?.pointee = PageOverlayFile.map(file).size
            return SQLITE_OK
        }
        methods.pointee.xLock = { file, lock in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xLock(inner, lock)
        }
        methods.pointee.xUnlock = { file, lock in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xUnlock(inner, lock)
        }
        methods.pointee.xCheckReservedLock = { file, result in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xCheckReservedLock(inner, result)
        }
        methods.pointee.xFileControl = { file, operation, argument in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xFileControl(inner, operation, argument)
        }
        methods.pointee.xSectorSize = { file in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xSectorSize(inner)
        }
        methods.pointee.xDeviceCharacteristics = { file in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xDeviceCharacteristics(inner)
        }
        methods.pointee.xShmMap = { file, region, size, extend, pointer in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xShmMap(inner, region, size, extend, pointer)
        }
        methods.pointee.xShmLock = { file, offset, count, flags in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xShmLock(inner, offset, count, flags)
        }
        methods.pointee.xShmBarrier = { file in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            unixMethods.xShmBarrier(inner)
        }
        methods.pointee.xShmUnmap = { file, delete in
            let (inner, unixMethods) = PageOverlayFile.unix(file)
            return unixMethods.xShmUnmap(inner, delete)
        }
        return methods
    }()
}
