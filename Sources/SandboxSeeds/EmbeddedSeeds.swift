import Crypto
import Foundation

/// The repository's `Seeds/` folder as built into the binary (the `EmbedSeeds` build plugin writes `files`), so the
/// sandbox behaves the same whatever folder it starts from.
///
/// The services read seeds from a folder; the embedded ones are written once per content version to the user's
/// cache (`SandboxCache`) and read from there, the same way `--seeds DIR` is read.
public enum EmbeddedSeeds {
    /// The files' paths relative to the seeds folder, sorted.
    public static var paths: [String] { files.map(\.path) }

    /// SHA-256 of every path and content, as hex: names the cached copy and is shown in the banner.
    public static let digest: String = {
        var hash = SHA256()
        for file in files {
            hash.update(data: Data(file.path.utf8))
            hash.update(data: [0])
            hash.update(data: Data(file.text.utf8))
            hash.update(data: [0])
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }()

    /// Writes every embedded file under `folder` (created if needed). An existing file is replaced only with
    /// `overwrite`; otherwise its path is returned as a conflict and nothing is written.
    @discardableResult
    public static func export(to folder: URL, overwrite: Bool) throws -> [String] {
        let manager = FileManager.default
        if !overwrite {
            let existing = files.map(\.path).filter {
                manager.fileExists(atPath: folder.appendingPathComponent($0).path)
            }
            if !existing.isEmpty { return existing }
        }
        for file in files {
            let url = folder.appendingPathComponent(file.path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(file.text.utf8).write(to: url, options: .atomic)
        }
        return []
    }

    /// The folder holding this binary's seeds under `cache`, written on first use. Two processes starting at once
    /// each write a private copy and the first rename wins, so a reader never sees a half-written folder.
    public static func materialized(in cache: URL) throws -> URL {
        let manager = FileManager.default
        let base = cache.appendingPathComponent("seeds")
        let folder = base.appendingPathComponent(String(digest.prefix(16)))
        if manager.fileExists(atPath: folder.appendingPathComponent(completeMarker).path) { return folder }
        try manager.createDirectory(at: base, withIntermediateDirectories: true)
        let staging = base.appendingPathComponent(".staging-\(UUID().uuidString)")
        defer { try? manager.removeItem(at: staging) }
        try export(to: staging, overwrite: true)
        try Data(digest.utf8).write(to: staging.appendingPathComponent(completeMarker))
        if manager.fileExists(atPath: folder.path) {
            // A copy without its marker was interrupted before the rename could happen; replace it.
            guard !manager.fileExists(atPath: folder.appendingPathComponent(completeMarker).path) else { return folder }
            try? manager.removeItem(at: folder)
        }
        do {
            try manager.moveItem(at: staging, to: folder)
        } catch  where manager.fileExists(atPath: folder.appendingPathComponent(completeMarker).path) {
            // Another process won the rename: its copy has the same content.
        }
        return folder
    }

    static let completeMarker = ".complete"
}

/// The per-user cache the sandbox keeps between data folders: embedded seeds written out, pre-minted keys.
/// `ESANTE_SANDBOX_CACHE`, else `$XDG_CACHE_HOME/esante-sandbox`, else `~/.cache/esante-sandbox`, else a folder
/// of the system's temporary directory when the home folder cannot be written (a container's read-only home).
public enum SandboxCache {
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let manager = FileManager.default
        var candidates: [URL] = []
        if let explicit = environment["ESANTE_SANDBOX_CACHE"], !explicit.isEmpty {
            candidates.append(URL(fileURLWithPath: explicit))
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            candidates.append(URL(fileURLWithPath: xdg).appendingPathComponent("esante-sandbox"))
        }
        if let home = environment["HOME"], !home.isEmpty {
            candidates.append(URL(fileURLWithPath: home).appendingPathComponent(".cache/esante-sandbox"))
        }
        for candidate in candidates {
            if (try? manager.createDirectory(at: candidate, withIntermediateDirectories: true)) != nil,
                manager.isWritableFile(atPath: candidate.path)
            {
                return candidate
            }
        }
        return manager.temporaryDirectory.appendingPathComponent("esante-sandbox-\(getuid())")
    }
}
