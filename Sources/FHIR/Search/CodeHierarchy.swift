/// Subsumption between codes of the R4 code systems whose concepts nest, for the token
/// modifiers `:below` (the code and everything it subsumes) and `:above` (the code and
/// everything that subsumes it). Systems outside r4-core (SNOMED CT, LOINC) have no
/// hierarchy here: for them both modifiers match the code alone.
public struct CodeHierarchy: Sendable {
    public static let r4 = CodeHierarchy(table: codeHierarchyText)

    /// System to code to its parents (a concept nests under one parent in R4's CodeSystems,
    /// but a code may appear under several).
    private var parents: [String: [String: [String]]] = [:]
    private var children: [String: [String: [String]]] = [:]

    init(table: String) {
        var system = ""
        for line in table.split(separator: "\n") {
            if line.hasPrefix("=") {
                system = String(line.dropFirst())
                continue
            }
            let columns = line.split(separator: "\t").map(String.init)
            guard columns.count == 2 else { continue }
            parents[system, default: [:]][columns[0], default: []].append(columns[1])
            children[system, default: [:]][columns[1], default: []].append(columns[0])
        }
    }

    /// `code` and every code below it in `system`.
    public func descendants(of code: String, in system: String) -> [String] {
        closure(from: code, edges: children[system] ?? [:])
    }

    /// `code` and every code above it in `system`.
    public func ancestors(of code: String, in system: String) -> [String] {
        closure(from: code, edges: parents[system] ?? [:])
    }

    private func closure(from code: String, edges: [String: [String]]) -> [String] {
        var seen: Set<String> = [code]
        var result = [code]
        var frontier = [code]
        while let next = frontier.popLast() {
            for neighbour in edges[next] ?? [] where seen.insert(neighbour).inserted {
                result.append(neighbour)
                frontier.append(neighbour)
            }
        }
        return result
    }
}
