import Foundation
import WarrenCore

#if canImport(Glibc)
import Glibc
#endif

/// Expands an `include` pattern and reads what it matches: re-run on every load,
/// so SIGHUP picks up files a provisioning tool added or removed.
enum IncludeGlob {
    /// The regular files `pattern` (absolute) matches, sorted, each read as UTF-8.
    /// A pattern without glob characters yields its one file, or nothing if absent.
    static func files(matching pattern: String) -> [IncludedFile] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for index in 0..<Int(result.gl_pathc) {
            if let cString = result.gl_pathv[index] { paths.append(String(cString: cString)) }
        }
        return paths.sorted().compactMap(read)
    }

    /// An included file is read only when another user could not have written
    /// it (see `TrustedFile`): owner, mode, links and size are checked first.
    private static func read(_ path: String) -> IncludedFile? {
        var info = stat()
        guard stat(path, &info) == 0 || lstat(path, &info) == 0 else {
            return IncludedFile(path: path, text: nil, problem: "does not exist")
        }
        if info.st_mode & S_IFMT == S_IFDIR { return nil }  // `tunnels.d/*` may match a subdirectory: not a tunnel file
        let bytes: [UInt8]
        do { bytes = try TrustedFile.read(path, limit: TrustedFile.includeLimit) } catch {
            // Said of the file: the loader prints "the included file ...".
            return IncludedFile(path: path, text: nil, problem: error.reason)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return IncludedFile(path: path, text: nil, problem: "is not UTF-8 text")
        }
        return IncludedFile(path: path, text: text)
    }
}
