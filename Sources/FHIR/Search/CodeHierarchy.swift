/// Subsumption between codes of the R4 code systems whose concepts nest, for the token
/// modifiers `:below` (the code and everything it subsumes) and `:above` (the code and
/// everything that subsumes it). Read from ``Terminology/r4``: nesting and the v3 `child`
/// property (a concept under two parents). Systems outside r4-core (SNOMED CT, LOINC) have
/// no hierarchy here: for them both modifiers match the code alone.
public struct CodeHierarchy: Sendable {
    public static let r4 = CodeHierarchy(terminology: .r4)

    let terminology: Terminology

    init(terminology: Terminology) {
        self.terminology = terminology
    }

    /// `code` and every code below it in `system` (at most the code system's size).
    public func descendants(of code: String, in system: String) -> [String] {
        guard let codeSystem = terminology.codeSystem(url: system) else { return [code] }
        let positions = codeSystem.descendantIndices(of: code)
        return positions.isEmpty ? [code] : positions.map { codeSystem.concepts[$0].code }
    }

    /// The codes a token value stands for: with `:below` the code and its descendants, with
    /// `:above` the code and its ancestors, otherwise the code alone. Search counts them
    /// against its `total-values` limit, since each becomes a bound SQL value (a `:below` of
    /// v3-Race `1002-5` is 828 codes).
    public func codes(_ code: String, system: String?, modifier: String?) -> [String] {
        guard let system, !system.isEmpty else { return [code] }
        switch modifier {
        case "below": return descendants(of: code, in: system)
        case "above": return ancestors(of: code, in: system)
        default: return [code]
        }
    }

    /// `code` and every code above it in `system`.
    public func ancestors(of code: String, in system: String) -> [String] {
        guard let codeSystem = terminology.codeSystem(url: system) else { return [code] }
        let positions = codeSystem.ancestorIndices(of: code)
        return positions.isEmpty ? [code] : positions.map { codeSystem.concepts[$0].code }
    }
}
