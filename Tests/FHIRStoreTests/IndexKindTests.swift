import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Each search parameter kind owns its index table: its CREATE TABLE must list the columns its
/// rows fill, in order, and a write must put each kind's rows in that kind's table whatever
/// order the rows come in (they are named by kind, never matched to tables by position).
@Suite struct IndexKindTests {
    /// The column names a CREATE TABLE statement declares, in order.
    static func declaredColumns(_ create: String) -> [String] {
        guard let open = create.firstIndex(of: "("), let close = create.lastIndex(of: ")") else { return [] }
        return create[create.index(after: open)..<close].split(separator: ",").compactMap {
            $0.split(whereSeparator: \.isWhitespace).first.map(String.init)
        }
    }

    @Test(arguments: [SQLDialect.sqlite, .postgres])
    func everyKindsTableDeclaresTheColumnsItsRowsFill(dialect: SQLDialect) throws {
        let statements = Schema.statements(for: dialect)
        #expect(Set(IndexKinds.all.map(\.table)).count == IndexKinds.all.count)
        for kind in IndexKinds.all {
            let create = try #require(
                statements.first { $0.hasPrefix("CREATE TABLE IF NOT EXISTS \(kind.table) ") }, "\(kind.table)")
            #expect(
                Self.declaredColumns(create) == ["type", "id", "param"] + kind.columns.map(\.name), "\(kind.table)")
            #expect(
                statements.contains {
                    $0.hasPrefix("CREATE INDEX IF NOT EXISTS \(kind.resourceIndex) ON \(kind.table) (type, id")
                })
            if let column = kind.sortColumn(descending: false) { #expect(kind.columns.map(\.name).contains(column)) }
            if let column = kind.sortColumn(descending: true) { #expect(kind.columns.map(\.name).contains(column)) }
        }
        for type in SearchParameterType.allCases {
            let kind = IndexKinds.kind(for: type)
            #expect((kind == nil) == (type == .special), "\(type)")
            if let kind { #expect(IndexKinds.all.contains { $0.table == kind.table }, "\(type)") }
        }
    }

    /// Every row has `param` and one value per column, of the column's kind (or NULL).
    @Test func everyRowFitsItsKindsColumns() throws {
        let indexer = SearchIndexer(registry: .r4)
        var filled = Set<String>()
        for text in PostgresCreateStatementTests.resources {
            let resource = try JSONParser.parse(text)
            let type = try #require(resource["resourceType"]?.stringValue)
            for table in IndexKinds.rows(indexer.entries(for: resource, resourceType: type)) {
                for row in table.rows {
                    #expect(row.count == 1 + table.kind.columns.count, "\(table.kind.table)")
                    guard case .text = row.first else {
                        Issue.record("\(table.kind.table): param is \(String(describing: row.first))"); continue
                    }
                    for (value, column) in zip(row.dropFirst(), table.kind.columns) {
                        switch (value, column.kind) {
                        case (.null, _), (.text, .text), (.integer, .bigint), (.double, .double): break
                        default: Issue.record("\(table.kind.table).\(column.name) holds \(value)")
                        }
                    }
                    filled.insert(table.kind.table)
                }
            }
        }
        #expect(filled == Set(IndexKinds.all.map(\.table)))
    }

    /// Rows handed over in reverse kind order land in their own tables, on SQLite's
    /// statement-by-statement inserts and PostgreSQL's one create statement alike.
    @Test(arguments: TestDatabases.backends)
    func rowsLandInTheirKindsTableWhateverTheirOrder(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            for (number, text) in PostgresCreateStatementTests.resources.enumerated() {
                let resource = try JSONParser.parse(text)
                let type = try #require(resource["resourceType"]?.stringValue)
                let id = "kinds-\(number)"
                let rows = IndexKinds.rows(store.indexer.entries(for: resource, resourceType: type))
                let reversed = Array(rows.reversed())
                try await store.database.withConnection { executor in
                    if let connection = executor as? PostgresDatabase.Connection {
                        try await connection.execute(
                            prepared: PostgresCreateStatement(
                                type: type, id: id, version: 1, lastUpdated: 1, body: text, indexRows: reversed))
                    } else {
                        try await executor.execute(
                            SQLFHIRTransaction.insertIndex(
                                rows: reversed, type: type, id: id, dialect: store.database.dialect))
                    }
                }
                for table in rows {
                    let columns = (["param"] + table.kind.columns.map(\.name)).joined(separator: ", ")
                    let stored = try await store.database.withConnection {
                        try await $0.query(
                            "SELECT \(columns) FROM \(table.kind.table) WHERE type = ? AND id = ?",
                            [.text(type), .text(id)])
                    }
                    #expect(Self.sorted(stored) == Self.sorted(table.rows), "\(type) \(table.kind.table)")
                }
            }
        }
    }

    static func sorted(_ rows: [SQLRow]) -> [String] { rows.map { "\($0)" }.sorted() }
}

/// PostgreSQL's estimate of a token search's rows when type, parameter, system and code go
/// together (as they do: AuditEvents fill most of idx_token with their own codes). Multiplying
/// the four columns' selectivities as if independent estimated one row for a code that a fifth
/// of the table holds, and the plan drove a patient's search from every row of that code.
@Suite struct IndexStatisticsTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    @Test(arguments: Self.postgres)
    func correlatedColumnsAreEstimatedTogether(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let database = store.database
            let names = try await database.withConnection {
                try await $0.query("SELECT stxname FROM pg_statistic_ext", []).compactMap { $0.first?.string }
            }
            for kind in IndexKinds.all { #expect(names.contains("\(kind.table)_columns"), "\(kind.table)") }
            // 2,000 heart rates among 8,000 rows of four other (type, param, system, code) sets.
            try await database.withConnection { executor in
                try await executor.query(
                    """
                    INSERT INTO idx_token (type, id, param, system, code)
                    SELECT (ARRAY['Observation','AuditEvent','Encounter','Condition','Patient'])[g % 5 + 1], 'r' || g,
                           (ARRAY['code','type','class','category','identifier'])[g % 5 + 1],
                           (ARRAY['http://loinc.org','http://dicom','http://hl7','http://snomed','urn:x'])[g % 5 + 1],
                           (ARRAY['8867-4','110112','AMB','problem','42'])[g % 5 + 1]
                    FROM generate_series(0, 9999) AS g
                    """, [])
                try await executor.query("ANALYZE idx_token", [])
            }
            let plan = try await database.withConnection {
                try await $0.query(
                    """
                    EXPLAIN SELECT 1 FROM idx_token WHERE type = 'Observation' AND param = 'code'
                    AND system = 'http://loinc.org' AND code = '8867-4'
                    """, [])
            }
            let line = try #require(plan.first?.first?.string)
            let rows = try #require(line.range(of: "rows="))
            let estimate = try #require(Int(line[rows.upperBound...].prefix(while: \.isNumber)))
            // Independent columns would give 10,000 / 5^4 = 16.
            #expect(estimate > 1000, "\(line)")
        }
    }
}
