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
