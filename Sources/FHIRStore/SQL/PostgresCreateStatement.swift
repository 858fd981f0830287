import NIOCore
import PostgresNIO

/// A new resource's first version on PostgreSQL as one statement whose text never changes: the
/// resource row, its history row, and every index row, each index table's rows bound as one
/// array per column and inserted from `unnest`.
///
/// Why one constant text: PostgreSQL parses and plans a statement each time its text is new to
/// the connection. With the rows spelled out as `VALUES (...), (...)` the text changed with the
/// number of index rows of each table, so every create was parsed and planned afresh, and the
/// client built and numbered a text of several kilobytes. This statement is prepared once per
/// connection (postgres-nio keeps it by ``name``) and then only bound and executed.
struct PostgresCreateStatement: PostgresPreparedStatement {
    typealias Row = ()

    var type: String
    var id: String
    var version: Int64
    var lastUpdated: Int64
    var body: String
    /// Every index table's rows of `param` and value columns, each named by its kind.
    var indexRows: [IndexTableRows]

    /// The element type of one column's array.
    typealias ColumnKind = IndexColumn.Kind

    /// The columns bound as arrays, per index kind (in ``IndexKinds/all`` order, as in
    /// ``sql``): `param`, then the kind's value columns.
    static let columnKinds: [[ColumnKind]] = IndexKinds.all.map { [.text] + $0.columns.map(\.kind) }

    /// `$1` type, `$2` id, `$3` version, `$4` last_updated, `$5` body, then the arrays. The last
    /// index table's INSERT is the statement itself, so that it returns no rows; PostgreSQL runs
    /// every data-changing part of a WITH exactly once, whether or not it is referenced.
    static let sql: String = {
        var parts = [
            "INSERT INTO resources (type, id, version, last_updated, deleted) VALUES ($1, $2, $3, $4, 0)",
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES ($1, $2, $3, $4, 0, $5)",
        ]
        var parameter = 6
        for kind in IndexKinds.all {
            let arrays = ([.text] + kind.columns.map(\.kind)).map { (column: ColumnKind) in
                defer { parameter += 1 }
                return "$\(parameter)::\(column.arrayCast)"
            }
            parts.append(
                "INSERT INTO \(kind.table) (type, id, param, \(kind.columns.map(\.name).joined(separator: ", "))) "
                    + "SELECT $1, $2, u.* FROM unnest(\(arrays.joined(separator: ", "))) AS u")
        }
        let last = parts.removeLast()
        return "WITH " + parts.enumerated().map { "s\($0.offset) AS (\($0.element))" }.joined(separator: ", ") + " "
            + last
    }()

    func makeBindings() throws -> PostgresBindings {
        let kinds = Self.columnKinds
        var bindings = PostgresBindings(capacity: 5 + kinds.reduce(0) { $0 + $1.count })
        bindings.append(type)
        bindings.append(id)
        bindings.append(version)
        bindings.append(lastUpdated)
        bindings.append(body)
        // Each kind's arrays where ``sql`` expects them, whatever order `indexRows` has; a kind
        // without rows binds empty arrays.
        for (kind, tableKinds) in zip(IndexKinds.all, kinds) {
            let rows = indexRows.first { $0.kind.table == kind.table }?.rows ?? []
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
