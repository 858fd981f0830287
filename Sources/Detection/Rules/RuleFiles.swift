import Foundation

/// Finds the rule files to load: the built-in ones shipped with Caduceus, then the user's
/// (`--rules DIR|FILE`). A user file named like a built-in one replaces it; others add to
/// them. Files load in name order within each group; `*.test.yaml` files are rule tests,
/// not rules.
public enum RuleFiles {
    /// The built-in rule files, bundled from the repository's `rules/` at build time.
    public static func builtin() throws -> [(path: String, text: String)] {
        guard let directory = Bundle.module.resourceURL else { return [] }
        return try Self.directory(directory.path).map { ($0.path, try read($0.path)) }
    }

    /// Built-in files (unless `includeBuiltin` is false) and every file of `paths`.
    public static func collect(includeBuiltin: Bool = true, paths: [String]) throws -> [(path: String, text: String)] {
        try collect(onto: includeBuiltin ? builtin() : [], paths: paths)
    }

    /// `first` (the built-in files, already read), then every file of `paths`.
    static func collect(onto first: [(path: String, text: String)], paths: [String]) throws -> [(
        path: String, text: String
    )] {
        var files = first
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw RuleError(location: SourceLocation(file: path), message: "no such rule file or directory")
            }
            let found =
                isDirectory.boolValue ? try directory(path) : [(name: (path as NSString).lastPathComponent, path: path)]
            for file in found {
                let text = try read(file.path)
                if let index = files.firstIndex(where: { ($0.path as NSString).lastPathComponent == file.name }) {
                    files[index] = (file.path, text)
                } else {
                    files.append((file.path, text))
                }
            }
        }
        return files
    }

    /// Loads and checks everything `collect` finds.
    /// The built-in files' rules keep their macros and lists when a user file plainly
    /// redefines one (see `RuleSet.load(_:knownFields:keeping:)`).
    public static func load(includeBuiltin: Bool = true, paths: [String]) throws -> RuleSet {
        let builtinFiles = includeBuiltin ? try builtin() : []
        return try RuleSet.load(collect(onto: builtinFiles, paths: paths), keeping: Set(builtinFiles.map(\.path)))
    }

    static func directory(_ path: String) throws -> [(name: String, path: String)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw RuleError(
                location: SourceLocation(file: path),
                message: "cannot list the directory: \(error.localizedDescription)")
        }
        return names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasSuffix(".test.yaml") }.sorted()
            .map { ($0, (path as NSString).appendingPathComponent($0)) }
    }

    /// Reads a rule file: a regular file of at most `RuleFileBounds.fileBytes`, opened
    /// without blocking (a FIFO named as a rule file is refused, not waited on).
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RuleError(
                location: SourceLocation(file: path),
                message: "cannot read the file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw RuleError(location: SourceLocation(file: path), message: "not a regular file")
        }
        guard Int(info.st_size) <= RuleFileBounds.fileBytes else {
            throw RuleError(
                location: SourceLocation(file: path),
                message:
                    "the file is \(info.st_size) bytes, more than the \(RuleFileBounds.fileBytes) a rule file may have")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        guard let data = try? handle.read(upToCount: RuleFileBounds.fileBytes + 1),
            data.count <= RuleFileBounds.fileBytes
        else {
            throw RuleError(
                location: SourceLocation(file: path),
                message: "cannot read the file, or it grew past \(RuleFileBounds.fileBytes) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuleError(location: SourceLocation(file: path), message: "the file is not UTF-8 text")
        }
        return text
    }
}
