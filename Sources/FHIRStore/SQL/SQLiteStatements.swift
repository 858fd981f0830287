import VaporCSQLite

/// One SQLite connection's statements, run through the C API and kept prepared.
///
/// sqlite-nio prepares every statement anew, runs it on a thread pool and hands each row
/// to an event loop on its own; a FHIR write is a dozen statements, so the hops and the
/// preparation cost more than the writing (BENCHMARKS.md, "FHIR store"). Here a statement
/// is prepared once per connection and SQL text, and runs on the calling thread: the
/// caller decides which thread that is (``SQLiteDatabase/Connection``).
///
/// Not thread-safe: the connection's mutex admits one caller at a time.
final class SQLiteStatements {
    /// How many prepared statements a connection keeps; past it the least recently used
    /// half is finalized. The store's write statements are a few dozen shapes; searches
    /// add one per query shape.
    static let capacity = 256

    private let handle: OpaquePointer
    private var prepared: [String: (statement: OpaquePointer, lastUse: UInt64)] = [:]
    private var uses: UInt64 = 0

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    /// Runs `sql` (one statement) with `binds`, and returns its rows.
    func run(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        let statement = try self.statement(for: sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        guard Int(sqlite_nio_sqlite3_bind_parameter_count(statement)) == binds.count else {
            throw SQLiteFailure(
                code: SQLITE_RANGE,
                message: "\(binds.count) values for \(sqlite_nio_sqlite3_bind_parameter_count(statement)) placeholders")
        }
        for (offset, value) in binds.enumerated() {
            let position = Int32(offset + 1)
            let result: Int32
            switch value {
            case .null: result = sqlite_nio_sqlite3_bind_null(statement, position)
            case .integer(let number): result = sqlite_nio_sqlite3_bind_int64(statement, position, number)
            case .double(let number): result = sqlite_nio_sqlite3_bind_double(statement, position, number)
            case .text(let text):
                // The explicit length keeps a text whole even if it holds a NUL.
                result = sqlite_nio_sqlite3_bind_text64(
                    statement, position, text, UInt64(text.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
            }
            guard result == SQLITE_OK else { throw failure(result) }
        }
        let columns = sqlite_nio_sqlite3_column_count(statement)
        var rows: [SQLRow] = []
        while true {
            let result = sqlite_nio_sqlite3_step(statement)
            if result == SQLITE_DONE { return rows }
            guard result == SQLITE_ROW else { throw failure(result) }
            var row: SQLRow = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns { row.append(value(statement, column)) }
            rows.append(row)
        }
    }

    /// Finalizes every prepared statement (before the connection closes).
    func finalizeAll() {
        for entry in prepared.values { sqlite_nio_sqlite3_finalize(entry.statement) }
        prepared.removeAll()
    }

    private func statement(for sql: String) throws -> OpaquePointer {
        uses += 1
        // One lookup: the texts are long (a multi-row INSERT), and each lookup hashes them whole.
        if let index = prepared.index(forKey: sql) {
            prepared.values[index].lastUse = uses
            return prepared.values[index].statement
        }
        if prepared.count >= Self.capacity { evictOldHalf() }
        var statement: OpaquePointer?
        var trailing = false
        let result = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let result = sqlite_nio_sqlite3_prepare_v3(
                handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            // Anything but blanks after the first statement would be silently dropped: refuse it.
            if let tail { trailing = String(cString: tail).contains { !$0.isWhitespace && $0 != ";" } }
            return result
        }
        guard result == SQLITE_OK, let statement, !trailing else {
            if let statement { sqlite_nio_sqlite3_finalize(statement) }
            throw result == SQLITE_OK
                ? SQLiteFailure(code: SQLITE_MISUSE, message: "Not exactly one statement") : failure(result)
        }
        prepared[sql] = (statement, uses)
        return statement
    }

    private func evictOldHalf() {
        let oldest = prepared.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(prepared.count / 2)
        for (sql, entry) in oldest {
            sqlite_nio_sqlite3_finalize(entry.statement)
            prepared[sql] = nil
        }
    }

    private func value(_ statement: OpaquePointer, _ column: Int32) -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(sqlite_nio_sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .double(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_NULL: return .null
        default:
            // Text, or a blob read as text (the store writes no blobs).
            guard let start = sqlite_nio_sqlite3_column_blob(statement, column) else { return .text("") }
            let bytes = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            return .text(String(decoding: UnsafeRawBufferPointer(start: start, count: bytes), as: UTF8.self))
        }
    }

    private func failure(_ result: Int32) -> SQLiteFailure {
        SQLiteFailure(
            code: sqlite_nio_sqlite3_extended_errcode(handle),
            message: String(cString: sqlite_nio_sqlite3_errmsg(handle)))
    }

    /// SQLite copies the bound text before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// An error SQLite reported, with its extended result code.
struct SQLiteFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String

    /// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE (macros Swift cannot import).
    var isUniqueViolation: Bool { code == SQLITE_CONSTRAINT | (6 << 8) || code == SQLITE_CONSTRAINT | (8 << 8) }

    var description: String { "SQLite error \(code): \(message)" }
}
