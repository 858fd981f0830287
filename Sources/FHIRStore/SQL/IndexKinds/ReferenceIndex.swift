import FHIR

/// `reference` parameters: the target's type and id (a local reference), the reference text
/// itself (`url`: absolute URLs, canonicals), and `Reference.identifier`, which
/// `:identifier` compares. Also what `_include`, `_revinclude`, chains, `_has`, compartments
/// and `$everything` follow.
struct ReferenceIndex: SearchIndexKind {
    var table: String { "idx_reference" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] =
        [.text("target_type"), .text("target_id"), .text("url"), .text("identifier_system"), .text("identifier_value")]

    var correlatedColumns: [String] { ["type", "param", "target_type", "target_id"] }

    func createStatements(text: String, real: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS idx_reference (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL,
              target_type \(text), target_id \(text), url \(text), identifier_system \(text), identifier_value \(text))
            """,
            "CREATE INDEX IF NOT EXISTS idx_reference_value ON idx_reference (type, param, target_id, target_type)",
            // Only absolute URLs are searched by their text, so only they are kept in `url`
            // (``rows(_:)``) and indexed: most references are relative (`Patient/123`), and an
            // index entry for each cost every write a B-tree insert no search could use. A
            // database made before it also keeps its `idx_reference_url` on every row (README,
            // "Upgrading").
            "CREATE INDEX IF NOT EXISTS idx_reference_absolute_url ON idx_reference (type, param, url) WHERE url IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS idx_reference_resource ON idx_reference (type, id)",
            // Who refers to a resource: $everything, export and the compartment walk. The
            // referrer's type lets a walk step over a type's rows (``SQLFHIRTransaction/referrersQuery(to:id:excludingTypes:)``):
            // $everything leaves out the audit trail, which grows with every read of the patient.
            // A database made before it also keeps its `idx_reference_target (target_id,
            // target_type)`: not dropped here, where every replica's start would take the table's
            // lock (README, "Upgrading").
            "CREATE INDEX IF NOT EXISTS idx_reference_target_type ON idx_reference (target_id, target_type, type)",
            "CREATE INDEX IF NOT EXISTS idx_reference_identifier ON idx_reference (type, param, identifier_value) WHERE identifier_value IS NOT NULL",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.references.map {
            [
                .text($0.parameter), SQLValue($0.targetType), SQLValue($0.targetId), SQLValue($0.searchableURL),
                SQLValue($0.identifierSystem), SQLValue($0.identifierValue),
            ]
        }
    }

    func sortColumn(descending: Bool) -> String? { "target_id" }

    /// The reference text, or the target's id (of one type when the value names it).
    static func condition(type: String?, id: String?, url: String?, alias i: String, binds: inout [SQLValue]) -> String?
    {
        var alternatives: [String] = []
        if let url {
            alternatives.append("\(i).url = ?")
            binds.append(.text(IndexKinds.bounded(url)))
        }
        if let id {
            if let type {
                alternatives.append("\(i).target_type = ? AND \(i).target_id = ?")
                binds.append(.text(IndexKinds.bounded(type)))
            } else {
                alternatives.append("\(i).target_id = ?")
            }
            binds.append(.text(IndexKinds.bounded(id)))
        }
        return alternatives.isEmpty ? nil : alternatives.map { "(\($0))" }.joined(separator: " OR ")
    }

    /// `:identifier`: `Reference.identifier` compared as a token.
    static func identifierCondition(_ system: String?, _ code: String?, alias: String, binds: inout [SQLValue])
        -> String?
    {
        TokenIndex.condition(
            system, code, modifier: "identifier", alias: alias, columns: ("identifier_system", "identifier_value"),
            binds: &binds)
    }
}
