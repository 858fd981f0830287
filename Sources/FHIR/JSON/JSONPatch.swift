/// RFC 6902 JSON Patch over ``JSONValue``, with RFC 6901 JSON Pointers.
///
/// A malformed patch document is a client error (400); a well-formed patch that cannot be
/// applied to this resource (a failed `test`, a missing path) is unprocessable (422), as the
/// FHIR PATCH interaction asks.
public enum JSONPatch {
    /// What a patch may do: `copy` doubles a document in one operation, so a short patch could
    /// otherwise build a document of gigabytes, or one nested past what the parser reads back.
    public struct Limits: Sendable, Equatable {
        /// The most operations in one patch.
        public var operations: Int
        /// The largest patched document, as compact JSON, in bytes.
        public var bytes: Int
        /// The deepest nesting of the patched document.
        public var depth: Int

        /// The default: 10,000 operations, 16 MiB, and the depth ``JSONParser`` reads.
        public init(operations: Int = 10_000, bytes: Int = 16 << 20, depth: Int = JSONParser.maximumDepth) {
            self.operations = operations
            self.bytes = bytes
            self.depth = depth
        }

        /// No bounds, for documents the server made itself.
        public static let none = Limits(operations: .max, bytes: .max, depth: .max)
    }

    /// The patched document's size and depth, bounded from above as operations add values: a
    /// value added at a path of n tokens is at most n plus its own depth deep.
    struct Growth {
        let limits: Limits
        var bytes: Int
        var depth: Int

        init(_ document: JSONValue, limits: Limits) throws {
            self.limits = limits
            (bytes, depth) = document.measure(byteCap: limits.bytes, depthCap: limits.depth)
            try check(index: nil)
        }

        mutating func add(_ value: JSONValue, at pointer: [String], index: Int) throws {
            let room = limits.bytes - bytes
            let measured = value.measure(byteCap: max(0, room), depthCap: max(0, limits.depth - pointer.count))
            bytes += measured.bytes + (pointer.last?.utf8.count ?? 0) + 4
            depth = max(depth, pointer.count + measured.depth)
            try check(index: index)
        }

        /// A move keeps the size; the value moved, `source.count` tokens down, is at most the
        /// rest of the depth deep, so the bound needs no walk over it.
        mutating func move(from source: [String], to pointer: [String], index: Int) throws {
            bytes += max(0, (pointer.last?.utf8.count ?? 0) - (source.last?.utf8.count ?? 0))
            depth = max(depth, pointer.count + max(0, depth - source.count))
            try check(index: index)
        }

        func check(index: Int?) throws {
            let what = index.map { "Operation \($0) of the patch" } ?? "The resource to patch"
            if bytes > limits.bytes {
                throw FHIRError(
                    status: 422, code: "too-costly", "\(what) makes the resource larger than \(limits.bytes) bytes")
            }
            if depth > limits.depth {
                throw FHIRError(
                    status: 422, code: "too-costly", "\(what) nests the resource deeper than \(limits.depth) levels")
            }
        }
    }

    /// Applies `patch` to `document`; throws 400 when the patch has more operations than
    /// `limits` allows, 422 when its result would be larger or deeper than they allow.
    public static func apply(_ patch: JSONValue, to document: JSONValue, limits: Limits = Limits()) throws -> JSONValue
    {
        guard let operations = patch.arrayValue else {
            throw FHIRError.badRequest("A JSON Patch document is an array of operations")
        }
        guard operations.count <= limits.operations else {
            throw FHIRError(
                status: 400, code: "too-costly",
                "The patch has \(operations.count) operations; at most \(limits.operations) are allowed")
        }
        var growth = try Growth(document, limits: limits)
        var result = document
        for (index, operation) in operations.enumerated() {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw FHIRError.badRequest("Operation \(index) of the patch needs 'op' and 'path'")
            }
            let pointer = try parsePointer(path, index: index)
            func value() throws -> JSONValue {
                guard let value = operation["value"] else {
                    throw FHIRError.badRequest("Operation \(index) ('\(op)') needs a 'value'")
                }
                return value
            }
            func from() throws -> [String] {
                guard let from = operation["from"]?.stringValue else {
                    throw FHIRError.badRequest("Operation \(index) ('\(op)') needs a 'from'")
                }
                return try parsePointer(from, index: index)
            }
            switch op {
            case "add":
                let added = try value()
                try growth.add(added, at: pointer, index: index)
                try add(added, at: pointer, in: &result, index: index)
            case "remove": _ = try remove(at: pointer, in: &result, index: index)
            case "replace":
                _ = try get(pointer, in: result, index: index)
                let replacement = try value()
                try growth.add(replacement, at: pointer, index: index)
                try set(replacement, at: pointer, in: &result, index: index)
            case "move":
                let source = try from()
                if pointer.starts(with: source), pointer.count > source.count {
                    throw FHIRError.unprocessable("Operation \(index) moves a value into itself")
                }
                try growth.move(from: source, to: pointer, index: index)
                let removed = try remove(at: source, in: &result, index: index)
                try add(removed, at: pointer, in: &result, index: index)
            case "copy":
                let copied = try get(try from(), in: result, index: index)
                try growth.add(copied, at: pointer, index: index)
                try add(copied, at: pointer, in: &result, index: index)
            case "test":
                guard try get(pointer, in: result, index: index) == (try value()) else {
                    throw FHIRError.unprocessable("Test operation \(index) failed at '\(path)'")
                }
            default:
                throw FHIRError.badRequest("Operation \(index) has the unknown op '\(op)'")
            }
        }
        return result
    }

    static func parsePointer(_ text: String, index: Int) throws -> [String] {
        if text.isEmpty { return [] }
        guard text.hasPrefix("/") else {
            throw FHIRError.badRequest("Operation \(index) has the path '\(text)', which is not a JSON Pointer")
        }
        return text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func arrayIndex(_ token: String, count: Int, allowEnd: Bool, index: Int) throws -> Int {
        if allowEnd, token == "-" { return count }
        guard let position = Int(token), position >= 0, String(position) == token, position < count + (allowEnd ? 1 : 0)
        else {
            throw FHIRError.unprocessable(
                "Operation \(index): '\(token)' is not a valid index into an array of \(count)")
        }
        return position
    }

    static func get(_ pointer: [String], in document: JSONValue, index: Int) throws -> JSONValue {
        var current = document
        for token in pointer {
            switch current {
            case .object(let object):
                guard let next = object[token] else {
                    throw FHIRError.unprocessable("Operation \(index): no member '\(token)' at its path")
                }
                current = next
            case .array(let array):
                current = array[try arrayIndex(token, count: array.count, allowEnd: false, index: index)]
            default:
                throw FHIRError.unprocessable(
                    "Operation \(index): the path goes through a value that is not a container")
            }
        }
        return current
    }

    /// Applies `transform` to the parent of the pointer's target, in place. Each container on
    /// the way is taken out of its parent while it changes, so that it holds the only reference
    /// to its storage and changes without a copy: a copy per operation made 2,000 operations on
    /// a resource with a long array cost seconds.
    static func modifyParent(
        of pointer: [String], in document: inout JSONValue, index: Int,
        _ transform: (inout JSONValue, String) throws -> Void
    ) throws {
        guard let last = pointer.last else { return try transform(&document, "") }
        func descend(_ node: inout JSONValue, _ depth: Int) throws {
            if depth == pointer.count - 1 { return try transform(&node, last) }
            let token = pointer[depth]
            if var object = takenObject(&node) {
                defer { node = .object(object) }
                guard var child = object[token] else {
                    throw FHIRError.unprocessable("Operation \(index): no member '\(token)' at its path")
                }
                object[token] = .null
                defer { object[token] = child }
                return try descend(&child, depth + 1)
            }
            if var array = takenArray(&node) {
                defer { node = .array(array) }
                let position = try arrayIndex(token, count: array.count, allowEnd: false, index: index)
                return try descend(&array[position], depth + 1)
            }
            throw FHIRError.unprocessable("Operation \(index): the path goes through a value that is not a container")
        }
        try descend(&document, 0)
    }

    /// The object `value` holds, leaving `.null` in its place (`nil`, and `value` untouched,
    /// when it is no object). Taking it out, rather than matching it in a `switch` (whose
    /// subject stays alive through the case), leaves one reference to its storage.
    static func takenObject(_ value: inout JSONValue) -> JSONObject? {
        guard case .object(let object) = value else { return nil }
        value = .null
        return object
    }

    /// The array `value` holds, taken out as ``takenObject(_:)`` takes an object.
    static func takenArray(_ value: inout JSONValue) -> [JSONValue]? {
        guard case .array(let array) = value else { return nil }
        value = .null
        return array
    }

    /// `add` inserts into arrays (`-` appends); `replace` overwrites an existing item.
    static func add(_ value: JSONValue, at pointer: [String], in document: inout JSONValue, index: Int) throws {
        try place(value, at: pointer, in: &document, index: index, inserting: true)
    }

    static func set(_ value: JSONValue, at pointer: [String], in document: inout JSONValue, index: Int) throws {
        try place(value, at: pointer, in: &document, index: index, inserting: false)
    }

    static func place(
        _ value: JSONValue, at pointer: [String], in document: inout JSONValue, index: Int, inserting: Bool
    ) throws {
        if pointer.isEmpty {
            document = value
            return
        }
        try modifyParent(of: pointer, in: &document, index: index) { parent, token in
            if var object = takenObject(&parent) {
                object[token] = value
                parent = .object(object)
            } else if var array = takenArray(&parent) {
                defer { parent = .array(array) }
                let position = try arrayIndex(token, count: array.count, allowEnd: inserting, index: index)
                if inserting { array.insert(value, at: position) } else { array[position] = value }
            } else {
                throw FHIRError.unprocessable("Operation \(index): the path's parent is not an object or array")
            }
        }
    }

    /// Removes the pointer's target and returns it.
    static func remove(at pointer: [String], in document: inout JSONValue, index: Int) throws -> JSONValue {
        guard !pointer.isEmpty else {
            throw FHIRError.unprocessable("Operation \(index): cannot remove the whole resource")
        }
        var removed: JSONValue = .null
        try modifyParent(of: pointer, in: &document, index: index) { parent, token in
            if var object = takenObject(&parent) {
                defer { parent = .object(object) }
                guard let value = object[token] else {
                    throw FHIRError.unprocessable("Operation \(index): no member '\(token)' to remove")
                }
                removed = value
                object[token] = nil
            } else if var array = takenArray(&parent) {
                defer { parent = .array(array) }
                removed = array.remove(at: try arrayIndex(token, count: array.count, allowEnd: false, index: index))
            } else {
                throw FHIRError.unprocessable("Operation \(index): cannot remove from a value that is not a container")
            }
        }
        return removed
    }
}
