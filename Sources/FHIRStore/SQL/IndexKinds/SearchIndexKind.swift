import FHIR

/// One kind of search parameter's index table, read in one place: its name and columns, its
/// CREATE statements for both dialects, its rows (from the indexer's ``SearchIndexEntries``),
/// and the column a sort reads. Each kind's value tests (the SQL of a search value and its
/// modifier against a row) sit beside it in the same file.
///
/// Every index table has `type`, `id` and `param` first (the resource and the parameter's
/// code), then the kind's value ``columns``.
protocol SearchIndexKind: Sendable {
    /// The index table, e.g. `idx_string`: also the prefix of its indexes' names.
    var table: String { get }
    /// The value columns after `type, id, param`, in insert order.
    var columns: [IndexColumn] { get }
    /// CREATE TABLE and CREATE INDEX, with `text` and `real` the dialect's column types.
    func createStatements(text: String, real: String) -> [String]
    /// This kind's rows for one resource: `param`, then the value columns.
    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]]
    /// The column `_sort` reads (the least value ascending, the greatest descending), or
    /// `nil` when the kind cannot be sorted by.
    func sortColumn(descending: Bool) -> String?
    /// The index on (type, id) that probing one resource's rows and deleting them use.
    var resourceIndex: String { get }
    /// The columns whose values go together (a parameter belongs to some types, a code to a
    /// system and a parameter): PostgreSQL keeps statistics of their combinations
    /// (``postgresStatistics``), since it otherwise multiplies their selectivities as if they
    /// were independent.
    var correlatedColumns: [String] { get }
}

extension SearchIndexKind {
    var resourceIndex: String { "\(table)_resource" }
    var correlatedColumns: [String] { ["type", "param"] }

    /// PostgreSQL's extended statistics on ``correlatedColumns``. Without them a search such as
    /// `Observation?patient=X&code=8867-4` was estimated at one row for the code (the product of
    /// type, param, system and code each alone, on a table of AuditEvents and Observations) and
    /// driven from every heart rate of every patient: 25 ms where the patient's four rows take
    /// 0.2 ms, and slower with each heart rate the workload wrote.
    var postgresStatistics: String {
        "CREATE STATISTICS IF NOT EXISTS \(table)_columns (dependencies, mcv) ON "
            + correlatedColumns.joined(separator: ", ") + " FROM \(table)"
    }
}

/// A value column of an index table and the element type PostgreSQL binds it as.
struct IndexColumn: Sendable {
    enum Kind: Sendable {
        case text, bigint, double

        var arrayCast: String {
            switch self {
            case .text: return "text[]"
            case .bigint: return "int8[]"
            case .double: return "float8[]"
            }
        }
    }

    var name: String
    var kind: Kind
    /// Whether one of the table's indexes holds it: its text values are then cut to
    /// ``IndexKinds/maximumIndexedBytes``; a column in no index keeps them whole.
    var inIndex = true

    static func text(_ name: String, inIndex: Bool = true) -> IndexColumn {
        IndexColumn(name: name, kind: .text, inIndex: inIndex)
    }
    static func bigint(_ name: String) -> IndexColumn { IndexColumn(name: name, kind: .bigint) }
    static func double(_ name: String) -> IndexColumn { IndexColumn(name: name, kind: .double) }
}

/// One index table's rows for one resource, named by their kind (never by position).
struct IndexTableRows: Sendable {
    var kind: any SearchIndexKind
    /// `param`, then the kind's value columns.
    var rows: [[SQLValue]]
}

/// The index kinds the store has, in the order their tables are created and written.
enum IndexKinds {
    static let all: [any SearchIndexKind] = [
        StringIndex(), TokenIndex(), ReferenceIndex(), DateIndex(), UriIndex(), NumberIndex(), CompositeIndex(),
    ]

    /// The kind whose table indexes parameters of `type` (number and quantity share one);
    /// `nil` for `special`, which has no index table.
    static func kind(for type: SearchParameterType) -> (any SearchIndexKind)? {
        switch type {
        case .string: return StringIndex()
        case .token: return TokenIndex()
        case .reference: return ReferenceIndex()
        case .date: return DateIndex()
        case .uri: return UriIndex()
        case .number, .quantity: return NumberIndex()
        case .composite: return CompositeIndex()
        case .special: return nil
        }
    }

    /// Every kind's rows for one resource's index entries.
    static func rows(_ entries: SearchIndexEntries) -> [IndexTableRows] {
        zip(all, boundedColumns).map { kind, cut in
            let rows = kind.rows(entries).map { row in
                guard row.contains(where: { if case .text(let text) = $0 { isLong(text) } else { false } }) else {
                    return row
                }
                return row.enumerated().map { column, value in
                    guard column >= cut.count || cut[column], case .text(let text) = value else { return value }
                    return .text(bounded(text))
                }
            }
            return IndexTableRows(kind: kind, rows: rows)
        }
    }

    /// Per kind, in ``all``'s order, which of a row's values (`param`, then the kind's columns)
    /// an index holds, so that ``rows(_:)`` cuts them.
    private static let boundedColumns: [[Bool]] = all.map { [true] + $0.columns.map(\.inIndex) }

    private static func isLong(_ text: String) -> Bool { text.utf8.count > maximumIndexedBytes }

    /// The most UTF-8 bytes of a value an index row keeps. PostgreSQL refuses a btree entry
    /// over about 2,700 bytes (SQLSTATE 54000), so one long name or code (a hostile one, or a
    /// long clinical text under a string parameter) made its whole write fail; an index
    /// holds up to five such columns. Searches bound their values the same way, so a value
    /// longer than this still finds its resources, together with any that share its first
    /// 512 bytes, and `:contains` sees the first 512 bytes only.
    static let maximumIndexedBytes = 512

    /// `text` cut to at most ``maximumIndexedBytes`` UTF-8 bytes, between two characters' scalars.
    static func bounded(_ text: String) -> String {
        guard isLong(text) else { return text }
        var bytes = 0
        var kept = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            bytes += UTF8.width(scalar)
            guard bytes <= maximumIndexedBytes else { break }
            kept.append(scalar)
        }
        return String(kept)
    }

    /// The test of one search value (with the clause's modifier) against the index row
    /// `alias`, by the kind that owns that form of value: `:text` strings are token displays,
    /// `:identifier` tokens are references' identifiers. `numberHigh` is the column ending a
    /// number's range (`value_high` in composite rows). `nil` when the value tests nothing.
    static func condition(
        _ value: SearchValue, modifier: String?, alias: String, numberHigh: String = "value", binds: inout [SQLValue]
    ) -> String? {
        switch value {
        case .string(let text):
            if modifier == "text" { return TokenIndex.displayPrefix(text, alias: alias, binds: &binds) }
            return StringIndex.condition(text, modifier: modifier, alias: alias, binds: &binds)
        case .token(let system, let code):
            if modifier == "identifier" {
                return ReferenceIndex.identifierCondition(system, code, alias: alias, binds: &binds)
            }
            return TokenIndex.condition(system, code, modifier: modifier, alias: alias, binds: &binds)
        case .reference(let type, let id, let url):
            return ReferenceIndex.condition(type: type, id: id, url: url, alias: alias, binds: &binds)
        case .date(let prefix, let range):
            return DateIndex.condition(prefix, range, low: "\(alias).low", high: "\(alias).high", binds: &binds)
        case .uri(let text):
            return UriIndex.condition(text, modifier: modifier, alias: alias, binds: &binds)
        case .number(let prefix, let number, let low, let high, let system, let code):
            return NumberIndex.condition(
                prefix, number, low: low, high: high, system: system, code: code, alias: alias, highColumn: numberHigh,
                binds: &binds)
        case .composite, .missing:
            return nil  // composites: CompositeIndex; :missing: the caller
        }
    }
}
