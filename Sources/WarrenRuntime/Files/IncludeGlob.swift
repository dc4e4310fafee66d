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

    private static func read(_ path: String) -> IncludedFile? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return IncludedFile(path: path, text: nil, problem: "does not exist")
        }
        if isDirectory.boolValue { return nil }  // `tunnels.d/*` may match a subdirectory: not a tunnel file
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            return IncludedFile(path: path, text: nil, problem: "is not a regular file")
        }
        guard ConfigFile.isRegularReadableFile(path), let data = FileManager.default.contents(atPath: path) else {
            return IncludedFile(path: path, text: nil, problem: "cannot be read (permissions?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return IncludedFile(path: path, text: nil, problem: "is not UTF-8 text")
        }
        return IncludedFile(path: path, text: text)
    }
}
