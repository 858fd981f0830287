import NIOCore
import PostgresNIO

/// New resources' first versions on PostgreSQL as one statement whose text never changes: the
/// resource rows, their history rows, and every index row, each column bound as one array and
/// inserted from `unnest`.
///
/// Why one constant text: PostgreSQL parses and plans a statement each time its text is new to
/// the connection. With the rows spelled out as `VALUES (...), (...)` the text changed with the
/// number of index rows of each table, so every create was parsed and planned afresh, and the
/// client built and numbered a text of several kilobytes. This statement is prepared once per
/// connection (postgres-nio keeps it by ``name``) and then only bound and executed, for one
/// resource or for the creates of several requests that ``PostgresCreateQueue`` groups.
struct PostgresCreateStatement: PostgresPreparedStatement {
    typealias Row = ()

    /// One new resource: its first version and its index rows.
    struct Resource: Sendable {
        var type: String
        var id: String
        var version: Int64
        var lastUpdated: Int64
        var body: String
        /// Every index table's rows of `param` and value columns, each named by its kind.
        var indexRows: [IndexTableRows]
    }

    var resources: [Resource]

    init(resources: [Resource]) {
        self.resources = resources
    }

    init(type: String, id: String, version: Int64, lastUpdated: Int64, body: String, indexRows: [IndexTableRows]) {
        resources = [
            Resource(type: type, id: id, version: version, lastUpdated: lastUpdated, body: body, indexRows: indexRows)
        ]
    }

    /// The element type of one column's array.
    typealias ColumnKind = IndexColumn.Kind

    /// The columns bound as arrays, per index kind (in ``IndexKinds/all`` order, as in
    /// ``sql``): `type`, `id`, `param`, then the kind's value columns.
    static let columnKinds: [[ColumnKind]] = IndexKinds.all.map { [.text, .text, .text] + $0.columns.map(\.kind) }

    /// `$1` types, `$2` ids, `$3` versions, `$4` last_updated, `$5` bodies, then each index
    /// table's arrays. The last index table's INSERT is the statement itself, so that it
    /// returns no rows; PostgreSQL runs every data-changing part of a WITH exactly once, whether
    /// or not it is referenced.
    static let sql: String = {
        let resources =
            "unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS r(type, id, version, at, body)"
        var parts = [
            "INSERT INTO resources (type, id, version, last_updated, deleted) SELECT r.type, r.id, r.version, r.at, 0 FROM \(resources)",
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) SELECT r.type, r.id, r.version, r.at, 0, r.body FROM \(resources)",
        ]
        var parameter = 6
        for (kind, columns) in zip(IndexKinds.all, columnKinds) {
            let arrays = columns.map { (column: ColumnKind) in
                defer { parameter += 1 }
                return "$\(parameter)::\(column.arrayCast)"
            }
            parts.append(
                "INSERT INTO \(kind.table) (type, id, param, \(kind.columns.map(\.name).joined(separator: ", "))) "
                    + "SELECT u.* FROM unnest(\(arrays.joined(separator: ", "))) AS u")
        }
        let last = parts.removeLast()
        return "WITH " + parts.enumerated().map { "s\($0.offset) AS (\($0.element))" }.joined(separator: ", ") + " "
            + last
    }()

    func makeBindings() throws -> PostgresBindings {
        let kinds = Self.columnKinds
        var bindings = PostgresBindings(capacity: 5 + kinds.reduce(0) { $0 + $1.count })
        bindings.append(resources.map(\.type))
        bindings.append(resources.map(\.id))
        bindings.append(resources.map(\.version))
        bindings.append(resources.map(\.lastUpdated))
        bindings.append(resources.map(\.body))
        // Each kind's arrays where ``sql`` expects them, whatever order `indexRows` has; a kind
        // without rows binds empty arrays. Each row gets its resource's type and id in front.
        for (kind, tableKinds) in zip(IndexKinds.all, kinds) {
            var rows: [[SQLValue]] = []
            for resource in resources {
                guard let table = resource.indexRows.first(where: { $0.kind.table == kind.table }) else { continue }
                let owner: [SQLValue] = [.text(resource.type), .text(resource.id)]
                rows.append(contentsOf: table.rows.map { owner + $0 })
            }
            for (column, kind) in tableKinds.enumerated() {
                try bindings.append(PostgresColumnArray(kind: kind, rows: rows, column: column))
            }
        }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}

/// One column of an index table's rows as a one-dimensional PostgreSQL array in the binary
/// format (NULL elements allowed, which postgres-nio's own arrays do not encode).
struct PostgresColumnArray: PostgresThrowingDynamicTypeEncodable {
    /// A value whose kind is not its column's, or a row without the column: a bug, refused
    /// rather than written wrongly.
    struct Mismatch: Error, CustomStringConvertible {
        var description: String { "An index row does not match its table's columns" }
    }

    var kind: PostgresCreateStatement.ColumnKind
    var rows: [[SQLValue]]
    var column: Int

    var psqlType: PostgresDataType {
        switch kind {
        case .text: return .textArray
        case .bigint: return .int8Array
        case .double: return .float8Array
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    private var elementType: PostgresDataType {
        switch kind {
        case .text: return .text
        case .bigint: return .int8
        case .double: return .float8
        }
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(
        into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>
    ) throws {
        // Header: dimensions, has-nulls flag, element type; then the dimension's length and
        // lower bound (an empty array has no dimension).
        let hasNull = rows.contains { $0.count > column && $0[column] == .null }
        buffer.writeInteger(Int32(rows.isEmpty ? 0 : 1))
        buffer.writeInteger(Int32(hasNull ? 1 : 0))
        buffer.writeInteger(elementType.rawValue)
        guard !rows.isEmpty else { return }
        buffer.writeInteger(Int32(rows.count))
        buffer.writeInteger(Int32(1))
        for row in rows {
            guard row.count > column else { throw Mismatch() }
            switch (row[column], kind) {
            case (.null, _):
                buffer.writeInteger(Int32(-1))
            case (.text(let text), .text):
                let length = text.utf8.count
                guard length <= Int(Int32.max) else { throw Mismatch() }
                buffer.writeInteger(Int32(length))
                buffer.writeString(text)
            case (.integer(let number), .bigint):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(number)
            case (.double(let number), .double):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(number.bitPattern)
            case (.integer(let number), .double):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(Double(number).bitPattern)
            default:
                throw Mismatch()
            }
        }
    }
}
