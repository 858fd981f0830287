import Yams

/// What a rule file requires of the engine that loads it (Falco's `required_engine_version`
/// and `required_plugin_versions` items), checked as Falco checks them: a file needing a
/// newer engine, or a plugin Caduceus does not have, is refused with its file:line:column.
public enum RuleFileRequirements {
    /// The Falco rules-engine version whose rule-file features Caduceus implements: the
    /// version the falcosecurity/rules files in `../shared/falco` require (exceptions,
    /// override, the fields of FieldTable).
    public static let engineVersion = EngineVersion(major: 0, minor: 57, patch: 0)

    /// Plugins whose fields are built in: the container plugin's `container.*` fields are
    /// FieldTable's, filled from the Docker Engine.
    public static let builtInPlugins: Set<String> = ["container"]

    /// A semantic version; Falco's old integer form `N` is `0.N.0`.
    public struct EngineVersion: Comparable, Sendable, CustomStringConvertible {
        public let major: Int, minor: Int, patch: Int

        public init(major: Int, minor: Int, patch: Int) {
            self.major = major
            self.minor = minor
            self.patch = patch
        }

        init?(_ text: String) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
            guard !parts.contains(where: { $0 == nil || $0! < 0 }) else { return nil }
            switch parts.count {
            case 1: self.init(major: 0, minor: parts[0]!, patch: 0)
            case 3: self.init(major: parts[0]!, minor: parts[1]!, patch: parts[2]!)
            default: return nil
            }
        }

        public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch) }
        public var description: String { "\(major).\(minor).\(patch)" }
    }

    /// Checks one `required_engine_version` or `required_plugin_versions` item.
    static func check(_ mapping: Node.Mapping, at location: (Node?) -> SourceLocation) throws {
        if let node = mapping["required_engine_version"] {
            guard let text = node.string, let required = EngineVersion(text) else {
                throw RuleError(
                    location: location(node),
                    message: "required_engine_version '\(node.string?.prefix(40) ?? "")' is not a version (N or X.Y.Z)")
            }
            if engineVersion < required {
                throw RuleError(
                    location: location(node),
                    message: "the file requires Falco engine version \(required); Caduceus implements \(engineVersion)")
            }
        }
        if let node = mapping["required_plugin_versions"] {
            guard let plugins = node.sequence else {
                throw RuleError(
                    location: location(node), message: "required_plugin_versions is a list of {name, version}")
            }
            for plugin in plugins {
                let names =
                    [plugin["name"]?.string] + (plugin["alternatives"]?.sequence ?? []).map { $0["name"]?.string }
                guard let name = names.first ?? nil else {
                    throw RuleError(location: location(plugin), message: "a required plugin needs a name")
                }
                guard names.contains(where: { $0.map(builtInPlugins.contains) ?? false }) else {
                    throw RuleError(
                        location: location(plugin),
                        message:
                            "the file requires plugin '\(name.prefix(80))', which Caduceus does not load (only the \(builtInPlugins.sorted().joined(separator: ", ")) plugin's fields are built in)"
                    )
                }
            }
        }
    }
}
