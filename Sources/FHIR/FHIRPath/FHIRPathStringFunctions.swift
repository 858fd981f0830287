import Foundation

/// The string functions, with regular expressions bounded against catastrophic backtracking.
extension FHIRPathEvaluator {
    func valueFunction(_ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus)
        throws -> [FHIRPathItem]?
    {
        if let result = try conversionFunction(name, input, arguments, focus) { return result }
        if let result = try mathFunction(name, input, arguments, focus) { return result }
        if let result = try boundaryFunction(name, input, arguments, focus) { return result }
        return try stringFunction(name, input, arguments, focus)
    }

    private func stringArgument(_ syntax: FHIRPathSyntax, _ focus: FHIRPathFocus, _ name: String) throws -> String? {
        guard let item = try singleValue(try evaluate(syntax, focus), name) else { return nil }
        guard case .string(let text) = item else {
            throw FHIRPathError(.execution, "\(name)() needs a string argument")
        }
        return text
    }

    private func bounded(_ text: String) throws -> [FHIRPathItem] {
        guard text.count <= limits.maximumStringLength else {
            throw FHIRPathError(.limit, "a string exceeded \(limits.maximumStringLength) characters")
        }
        return [.string(text)]
    }

    private static let stringFunctionNames: Set<String> = [
        "indexOf", "substring", "startsWith", "endsWith", "contains", "upper", "lower", "replace", "matches",
        "matchesFull", "replaceMatches", "length", "toChars", "trim", "split", "encode", "decode", "escape", "unescape",
    ]

    private func stringFunction(
        _ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus
    ) throws -> [FHIRPathItem]? {
        if name == "join" {
            let separator = try arguments.first.map { try stringArgument($0, focus, name) ?? "" } ?? ""
            let parts = input.compactMap(\.stringForm)
            try charge(parts.count)
            return try bounded(parts.joined(separator: separator))
        }
        guard Self.stringFunctionNames.contains(name) else { return nil }
        guard let item = try singleValue(input, name) else { return [] }
        guard case .string(let text) = item else {
            throw FHIRPathError(.execution, "\(name)() needs a string, got \(FHIRPathTypes.typeName(item).name)")
        }
        try charge(text.count / 64 + 1)
        switch name {
        case "length": return [.integer(text.count)]
        case "upper": return [.string(text.uppercased())]
        case "lower": return [.string(text.lowercased())]
        case "trim": return [.string(text.trimmingCharacters(in: .whitespacesAndNewlines))]
        case "toChars": return text.map { .string(String($0)) }
        case "indexOf":
            guard let needle = try stringArgument(arguments[0], focus, name) else { return [] }
            if needle.isEmpty { return [.integer(0)] }
            guard let range = text.range(of: needle) else { return [.integer(-1)] }
            return [.integer(text.distance(from: text.startIndex, to: range.lowerBound))]
        case "substring":
            guard let start = try singleInteger(arguments[0], focus) else { return [] }
            let characters = Array(text)
            guard start >= 0, start < characters.count else { return [] }
            var length = characters.count - start
            if arguments.count > 1 {
                guard let given = try singleInteger(arguments[1], focus) else {
                    return [.string(String(characters[start...]))]
                }
                length = min(max(0, given), length)
            }
            return [.string(String(characters[start..<start + length]))]
        case "startsWith", "endsWith", "contains":
            guard let other = try stringArgument(arguments[0], focus, name) else { return [] }
            if other.isEmpty { return [.boolean(true)] }
            let result =
                name == "startsWith"
                ? text.hasPrefix(other) : name == "endsWith" ? text.hasSuffix(other) : text.contains(other)
            return [.boolean(result)]
        case "replace":
            guard let pattern = try stringArgument(arguments[0], focus, name),
                let substitution = try stringArgument(arguments[1], focus, name)
            else { return [] }
            if pattern.isEmpty {
                // Inserts the substitution around every character, as the specification's example shows.
                guard (text.count + 1) * substitution.count <= limits.maximumStringLength else {
                    throw FHIRPathError(.limit, "replace() result too long")
                }
                return try bounded(substitution + text.map { String($0) + substitution }.joined())
            }
            let pieces = text.components(separatedBy: pattern)
            guard pieces.count * substitution.count <= limits.maximumStringLength else {
                throw FHIRPathError(.limit, "replace() result too long")
            }
            return try bounded(pieces.joined(separator: substitution))
        case "matches", "matchesFull":
            guard let pattern = try stringArgument(arguments[0], focus, name) else { return [] }
            let expression = try Self.regularExpression(name == "matchesFull" ? "^(?:" + pattern + ")$" : pattern)
            return [.boolean(!(try regexMatches(expression, in: text, all: false)).isEmpty)]
        case "replaceMatches":
            guard let pattern = try stringArgument(arguments[0], focus, name),
                let substitution = try stringArgument(arguments[1], focus, name)
            else { return [] }
            if pattern.isEmpty { return [.string(text)] }
            let expression = try Self.regularExpression(pattern)
            let source = text as NSString
            var result = "", position = 0
            for match in try regexMatches(expression, in: text, all: true) {
                result += source.substring(with: NSRange(location: position, length: match.range.location - position))
                result += expression.replacementString(for: match, in: text, offset: 0, template: substitution)
                position = match.range.location + match.range.length
                guard result.utf8.count <= limits.maximumStringLength else {
                    throw FHIRPathError(.limit, "replaceMatches() result too long")
                }
            }
            return try bounded(result + source.substring(from: position))
        case "split":
            guard let separator = try stringArgument(arguments[0], focus, name) else { return [] }
            if separator.isEmpty { return text.map { .string(String($0)) } }
            return text.components(separatedBy: separator).map { .string($0) }
        case "encode", "decode", "escape", "unescape":
            guard let format = try stringArgument(arguments[0], focus, name) else { return [] }
            return try FHIRPathTextCoding.apply(name, format, text).map { try bounded($0) } ?? []
        default: return nil
        }
    }

    /// A compiled pattern (at most 1,000 characters).
    static func regularExpression(_ pattern: String) throws -> NSRegularExpression {
        guard pattern.count <= 1000 else {
            throw FHIRPathError(.limit, "regular expression longer than 1000 characters")
        }
        do {
            return try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        } catch {
            throw FHIRPathError(.execution, "invalid regular expression: \(pattern)")
        }
    }

    /// How many progress reports ICU may make during one match before it is stopped. ICU
    /// backtracks, so `(a+)+$` on 40 letters would run for days; it reports progress every
    /// few thousand steps while it works (`.reportProgress`), and each report is charged to
    /// the evaluation's step budget too.
    static let maximumRegexProgressReports = 1000

    /// The ranges of the pattern's matches in `text` (the first only unless `all`), with
    /// the work bounded by progress reports.
    func regexMatches(_ expression: NSRegularExpression, in text: String, all: Bool) throws -> [NSTextCheckingResult] {
        var matches: [NSTextCheckingResult] = []
        var reports = 0
        let range = NSRange(text.startIndex..., in: text)
        expression.enumerateMatches(in: text, options: [.reportProgress], range: range) { match, _, stop in
            if let match {
                matches.append(match)
                if !all { stop.pointee = true }
            } else {
                reports += 1
                if reports > Self.maximumRegexProgressReports { stop.pointee = true }
            }
        }
        try charge(reports * 1000 + matches.count)
        guard reports <= Self.maximumRegexProgressReports else {
            throw FHIRPathError(.limit, "regular expression stopped after too many steps: \(expression.pattern)")
        }
        return matches
    }
}

/// `encode`/`decode` (base64, urlbase64, hex) and `escape`/`unescape` (html, json).
enum FHIRPathTextCoding {
    static func apply(_ function: String, _ format: String, _ text: String) throws -> String? {
        switch (function, format) {
        case ("encode", "base64"): return Data(text.utf8).base64EncodedString()
        case ("encode", "urlbase64"):
            return Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
                of: "/", with: "_")
        case ("encode", "hex"): return text.utf8.map { String(format: "%02x", $0) }.joined()
        case ("decode", "base64"), ("decode", "urlbase64"):
            let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            return Data(base64Encoded: standard).flatMap { String(data: $0, encoding: .utf8) }
        case ("decode", "hex"):
            var bytes: [UInt8] = []
            let characters = Array(text)
            guard characters.count % 2 == 0 else { return nil }
            for index in stride(from: 0, to: characters.count, by: 2) {
                guard let byte = UInt8(String(characters[index...index + 1]), radix: 16) else { return nil }
                bytes.append(byte)
            }
            return String(bytes: bytes, encoding: .utf8)
        case ("escape", "html"):
            return text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
                .replacingOccurrences(of: "'", with: "&#39;")
        case ("unescape", "html"):
            return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        case ("escape", "json"):
            return text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
        case ("unescape", "json"):
            return text.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\n", with: "\n")
                .replacingOccurrences(of: "\\t", with: "\t").replacingOccurrences(of: "\\\\", with: "\\")
        default:
            throw FHIRPathError(.execution, "unknown \(function) format '\(format)'")
        }
    }
}
