/// RFC 6902 JSON Patch over ``JSONValue``, with RFC 6901 JSON Pointers.
///
/// A malformed patch document is a client error (400); a well-formed patch that cannot be
/// applied to this resource (a failed `test`, a missing path) is unprocessable (422), as the
/// FHIR PATCH interaction asks.
public enum JSONPatch {
    public static func apply(_ patch: JSONValue, to document: JSONValue) throws -> JSONValue {
        guard let operations = patch.arrayValue else {
            throw FHIRError.badRequest("A JSON Patch document is an array of operations")
        }
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
            case "add": result = try add(try value(), at: pointer, in: result, index: index)
            case "remove": result = try remove(at: pointer, in: result, index: index).document
            case "replace":
                _ = try get(pointer, in: result, index: index)
                result = try set(try value(), at: pointer, in: result, index: index)
            case "move":
                let source = try from()
                if pointer.starts(with: source), pointer.count > source.count {
                    throw FHIRError.unprocessable("Operation \(index) moves a value into itself")
                }
                let removed = try remove(at: source, in: result, index: index)
                result = try add(removed.value, at: pointer, in: removed.document, index: index)
            case "copy": result = try add(try get(try from(), in: result, index: index), at: pointer, in: result, index: index)
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
        guard let position = Int(token), position >= 0, String(position) == token, position < count + (allowEnd ? 1 : 0) else {
            throw FHIRError.unprocessable("Operation \(index): '\(token)' is not a valid index into an array of \(count)")
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
                throw FHIRError.unprocessable("Operation \(index): the path goes through a value that is not a container")
            }
        }
        return current
    }

    /// Rebuilds the document with `transform` applied to the parent of the pointer's target.
    static func modifyParent(
        of pointer: [String], in document: JSONValue, index: Int, _ transform: (inout JSONValue, String) throws -> Void
    ) throws -> JSONValue {
        guard let last = pointer.last else {
            var whole = document
            try transform(&whole, "")
            return whole
        }
        func descend(_ node: JSONValue, _ depth: Int) throws -> JSONValue {
            if depth == pointer.count - 1 {
                var parent = node
                try transform(&parent, last)
                return parent
            }
            let token = pointer[depth]
            switch node {
            case .object(var object):
                guard let child = object[token] else {
                    throw FHIRError.unprocessable("Operation \(index): no member '\(token)' at its path")
                }
                object[token] = try descend(child, depth + 1)
                return .object(object)
            case .array(var array):
                let position = try arrayIndex(token, count: array.count, allowEnd: false, index: index)
                array[position] = try descend(array[position], depth + 1)
                return .array(array)
            default:
                throw FHIRError.unprocessable("Operation \(index): the path goes through a value that is not a container")
            }
        }
        return try descend(document, 0)
    }

    /// `add` inserts into arrays (`-` appends); `replace` overwrites an existing item.
    static func add(_ value: JSONValue, at pointer: [String], in document: JSONValue, index: Int) throws -> JSONValue {
        try place(value, at: pointer, in: document, index: index, inserting: true)
    }

    static func set(_ value: JSONValue, at pointer: [String], in document: JSONValue, index: Int) throws -> JSONValue {
        try place(value, at: pointer, in: document, index: index, inserting: false)
    }

    static func place(_ value: JSONValue, at pointer: [String], in document: JSONValue, index: Int, inserting: Bool) throws -> JSONValue {
        if pointer.isEmpty { return value }
        return try modifyParent(of: pointer, in: document, index: index) { parent, token in
            switch parent {
            case .object(var object):
                object[token] = value
                parent = .object(object)
            case .array(var array):
                let position = try arrayIndex(token, count: array.count, allowEnd: inserting, index: index)
                if inserting { array.insert(value, at: position) } else { array[position] = value }
                parent = .array(array)
            default:
                throw FHIRError.unprocessable("Operation \(index): the path's parent is not an object or array")
            }
        }
    }

    static func remove(at pointer: [String], in document: JSONValue, index: Int) throws -> (document: JSONValue, value: JSONValue) {
        guard !pointer.isEmpty else { throw FHIRError.unprocessable("Operation \(index): cannot remove the whole resource") }
        var removed: JSONValue = .null
        let result = try modifyParent(of: pointer, in: document, index: index) { parent, token in
            switch parent {
            case .object(var object):
                guard let value = object[token] else {
                    throw FHIRError.unprocessable("Operation \(index): no member '\(token)' to remove")
                }
                removed = value
                object[token] = nil
                parent = .object(object)
            case .array(var array):
                removed = array.remove(at: try arrayIndex(token, count: array.count, allowEnd: false, index: index))
                parent = .array(array)
            default:
                throw FHIRError.unprocessable("Operation \(index): cannot remove from a value that is not a container")
            }
        }
        return (result, removed)
    }
}
