/// Checks narratives (`text.div`, in a resource, its contained resources and Bundle entries)
/// against FHIR's rules for XHTML (R4 Narrative, txt-1 and txt-2): well-formed, rooted in a
/// `div`, only the basic HTML formatting elements, and nothing active: no scripts, no event
/// attributes (`onerror=`), URLs only of safe schemes (`data:` only for images), and no script
/// in `style` (its CSS escapes and comments decoded first).
///
/// A narrative is shown to every user who opens the resource: without this, one stored
/// `<img onerror=...>` runs script in each viewer's browser (stored XSS).
public enum NarrativeChecker {
    /// The elements FHIR allows in a narrative (HTML 4.0 chapters 7-11 and 15, `a`, `img`).
    static let elements: Set<String> = [
        "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small", "big",
        "tt",
        "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd", "sub", "sup", "ul",
        "ol",
        "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody", "th",
        "td",
        "code", "samp", "img", "map", "area",
    ]
    /// Attributes whose value is a URL a browser follows or loads.
    static let urlAttributes: Set<String> = [
        "href", "src", "longdesc", "cite", "usemap", "background", "action", "lowsrc", "dynsrc", "srcset", "poster",
        "data", "formaction",
    ]
    static let xhtmlNamespace = "http://www.w3.org/1999/xhtml"

    /// Every problem of every narrative in `resource`, located by FHIRPath.
    public static func problems(_ resource: JSONValue) -> [FHIRError.Issue] {
        var issues: [FHIRError.Issue] = []
        var path = [resource["resourceType"]?.stringValue ?? "Resource"]
        collect(resource, path: &path, into: &issues)
        return issues
    }

    /// Walks `value`, keeping the path as a stack of steps: most writes have no problem to
    /// locate, so no path text is built unless one is found.
    static func collect(_ value: JSONValue, path: inout [String], into issues: inout [FHIRError.Issue]) {
        switch value {
        case .object(let object):
            for (key, member) in object {
                if key == "text", case .string(let div)? = member["div"], let problem = problem(inDiv: div) {
                    issues.append(
                        FHIRError.Issue(
                            code: "invalid", diagnostics: "The narrative is not safe XHTML: \(problem)",
                            expression: [(path + ["text", "div"]).joined(separator: ".")]))
                }
                guard member.objectValue != nil || member.arrayValue != nil else { continue }
                path.append(key)
                collect(member, path: &path, into: &issues)
                path.removeLast()
            }
        case .array(let items):
            for (index, item) in items.enumerated() where item.objectValue != nil || item.arrayValue != nil {
                path[path.count - 1] += "[\(index)]"
                collect(item, path: &path, into: &issues)
                path[path.count - 1].removeLast(String(index).count + 2)
            }
        default: break
        }
    }

    /// What is wrong with the XHTML `div`, or `nil` when it is a safe narrative.
    public static func problem(inDiv div: String) -> String? {
        var reader = XHTMLReader(Array(div.utf8))
        do {
            try reader.readDocument()
            return nil
        } catch let error as XHTMLReader.Problem {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// A URL attribute's value as a browser reads its scheme: entities decoded, whitespace and
    /// control characters dropped (`java&#x09;script:` is `javascript:`), lower-cased.
    static func normalizedURL(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value > 0x20 && $0.value != 0x7F }))
            .lowercased()
    }

    /// The schemes a narrative's links and images may use; anything else (`javascript:`,
    /// `feed:javascript:`, `vbscript:`, ...) is refused rather than listed.
    static let safeSchemes: Set<String> = ["http", "https", "mailto", "tel", "urn", "ftp"]

    /// Whether a URL may stay: relative, a fragment, or one of the safe schemes; `data:` only
    /// for images.
    static func isSafeURL(_ value: String, allowsImageData: Bool) -> Bool {
        let url = normalizedURL(value)
        guard let colon = url.firstIndex(of: ":"), !url[..<colon].contains(where: { "/?#".contains($0) }) else {
            return true
        }
        let scheme = String(url[..<colon])
        if scheme == "data" { return allowsImageData && url.hasPrefix("data:image/") }
        return safeSchemes.contains(scheme)
    }

    /// A style attribute as a CSS parser reads it: comments removed (`expr/**/ession(`), escapes
    /// decoded (`expr\65 ssion(`, `java\73 cript:`), then as ``normalizedURL(_:)``.
    static func decodedStyle(_ value: String) -> String {
        let scalars = Array(value.unicodeScalars)
        var decoded = String.UnicodeScalarView()
        var index = 0
        func at(_ offset: Int) -> Unicode.Scalar? { index + offset < scalars.count ? scalars[index + offset] : nil }
        while let scalar = at(0) {
            if scalar == "/", at(1) == "*" {
                index += 2
                while index < scalars.count, !(at(0) == "*" && at(1) == "/") { index += 1 }
                index += 2  // an unterminated comment runs to the end
            } else if scalar == "\\" {
                index += 1
                var hex = ""
                while hex.count < 6, let digit = at(0), digit.properties.isASCIIHexDigit {
                    hex.unicodeScalars.append(digit)
                    index += 1
                }
                if let code = UInt32(hex, radix: 16) {
                    decoded.append(code == 0 ? "\u{FFFD}" : Unicode.Scalar(code) ?? "\u{FFFD}")
                    if at(0) == "\r", at(1) == "\n" {
                        index += 2
                    } else if let space = at(0), " \t\n\r\u{0C}".unicodeScalars.contains(space) {
                        index += 1
                    }
                } else if let escaped = at(0) {
                    if escaped != "\n" { decoded.append(escaped) }  // an escaped newline is nothing
                    index += 1
                }
            } else {
                decoded.append(scalar)
                index += 1
            }
        }
        return normalizedURL(String(decoded))
    }

    /// Whether a style attribute may stay: no script constructs, and every `url(...)` safe.
    static func isSafeStyle(_ value: String) -> Bool {
        let style = decodedStyle(value)
        if ["javascript:", "vbscript:", "expression(", "behavior:", "-moz-binding"].contains(where: style.contains) {
            return false
        }
        var rest = style[...]
        while let start = rest.range(of: "url(") {
            let inside = rest[start.upperBound...].prefix { $0 != ")" }
            let url = String(inside.filter { $0 != "\"" && $0 != "'" })
            guard isSafeURL(url, allowsImageData: true) else { return false }
            rest = rest[start.upperBound...]
        }
        return true
    }
}

/// A small XML reader for narratives: elements, attributes, text, character and entity
/// references and comments; anything else (DOCTYPE, CDATA, processing instructions) is refused.
struct XHTMLReader {
    struct Problem: Error {
        let message: String
    }

    let bytes: [UInt8]
    var position = 0
    var open: [String] = []
    /// Whether the last attribute value held a named reference this reader does not decode
    /// (an HTML parser decodes `&colon;` and `&Tab;`, so such a URL's scheme is unknown).
    var valueHasUnknownReference = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func problem(_ message: String) -> Problem { Problem(message: "\(message) (at byte \(position))") }

    mutating func readDocument() throws {
        skipWhitespace()
        guard starts(with: "<div") else { throw problem("it must be a single <div> element") }
        var sawRoot = false
        while position < bytes.count {
            if bytes[position] == UInt8(ascii: "<") {
                if starts(with: "<!--") {
                    guard let end = find("-->", from: position + 4) else { throw problem("an unterminated comment") }
                    // XML's comment rules (no `--` inside, none ending in `-`, not opening
                    // with `>` or `->`) also keep a browser's HTML parser, which ends a comment
                    // at `<!-->`, `<!--->` or `--!>`, from reading markup hidden in one.
                    let content = Array(bytes[(position + 4)..<end])
                    if content.first == UInt8(ascii: ">") || content.starts(with: Array("->".utf8))
                        || content.last == UInt8(ascii: "-")
                        || zip(content, content.dropFirst()).contains(where: {
                            $0 == UInt8(ascii: "-") && $1 == UInt8(ascii: "-")
                        })
                    {
                        throw problem("a comment a browser would end early (<!-->, <!--->, -- or --!> in it)")
                    }
                    position = end + 3
                } else if starts(with: "<!") || starts(with: "<?") {
                    throw problem("a DOCTYPE, CDATA section or processing instruction")
                } else if starts(with: "</") {
                    try readEndTag()
                } else {
                    guard !sawRoot || !open.isEmpty else { throw problem("content after the root <div>") }
                    sawRoot = true
                    try readStartTag()
                }
            } else {
                guard !open.isEmpty || isWhitespace(bytes[position]) else {
                    throw problem("text outside the root <div>")
                }
                position += 1
            }
        }
        guard open.isEmpty else { throw problem("<\(open.last!)> is never closed") }
    }

    mutating func readStartTag() throws {
        position += 1
        let name = readName()
        guard !name.isEmpty else { throw problem("a '<' that starts no element (write &lt;)") }
        guard NarrativeChecker.elements.contains(name) else {
            throw problem("the element <\(name)> is not allowed in a narrative")
        }
        if open.isEmpty, name != "div" { throw problem("it must be a single <div> element") }
        var seen = Set<String>()
        while true {
            let hadSpace = skipWhitespace()
            guard position < bytes.count else { throw problem("an unterminated <\(name)> tag") }
            if bytes[position] == UInt8(ascii: ">") {
                position += 1
                open.append(name)
                return
            }
            if starts(with: "/>") {
                position += 2
                return
            }
            guard hadSpace else { throw problem("a malformed <\(name)> tag") }
            let attribute = readName()
            guard !attribute.isEmpty else { throw problem("a malformed attribute in <\(name)>") }
            guard seen.insert(attribute).inserted else {
                throw problem("the attribute \(attribute) twice in <\(name)>")
            }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "=") else {
                throw problem("the attribute \(attribute) has no value")
            }
            position += 1
            skipWhitespace()
            valueHasUnknownReference = false
            let value = try readAttributeValue()
            try check(attribute: attribute, value: value, element: name, isRoot: open.isEmpty)
        }
    }

    func check(attribute: String, value: String, element: String, isRoot: Bool) throws {
        let lower = attribute.lowercased()
        if lower.hasPrefix("on") { throw problem("the event attribute \(attribute) is not allowed") }
        if lower == "xmlns" {
            guard value == NarrativeChecker.xhtmlNamespace else {
                throw problem("the namespace must be \(NarrativeChecker.xhtmlNamespace)")
            }
            return
        }
        if lower.contains(":"), !["xml:lang", "xml:space"].contains(lower) {
            throw problem("the attribute \(attribute) is not allowed (no xlink or other namespaces)")
        }
        if NarrativeChecker.urlAttributes.contains(lower) {
            guard !valueHasUnknownReference else {
                throw problem(
                    "the URL in \(attribute) of <\(element)> has an entity reference other than &amp; &lt; &gt; &quot; &apos;"
                )
            }
            guard NarrativeChecker.isSafeURL(value, allowsImageData: element == "img" && lower == "src") else {
                throw problem("the URL in \(attribute) of <\(element)> has a scheme that is not allowed")
            }
        }
        if lower == "style" {
            guard NarrativeChecker.isSafeStyle(value) else {
                throw problem("the style attribute holds a script or a URL that is not allowed")
            }
        }
    }

    mutating func readEndTag() throws {
        position += 2
        let name = readName()
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ">") else {
            throw problem("a malformed </\(name)> tag")
        }
        position += 1
        guard let last = open.popLast(), last == name else { throw problem("</\(name)> closes no open element") }
    }

    /// An attribute value in quotes, with its character and entity references decoded.
    mutating func readAttributeValue() throws -> String {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'")
        else {
            throw problem("an attribute value without quotes")
        }
        let quote = bytes[position]
        position += 1
        var value: [UInt8] = []
        while position < bytes.count, bytes[position] != quote {
            let byte = bytes[position]
            if byte == UInt8(ascii: "<") { throw problem("a '<' in an attribute value") }
            if byte == UInt8(ascii: "&") {
                value += decodeReference()
            } else {
                value.append(byte)
                position += 1
            }
        }
        guard position < bytes.count else { throw problem("an unterminated attribute value") }
        position += 1
        return String(decoding: value, as: UTF8.self)
    }

    /// The reference at `&` decoded as a browser would (numeric ones even without `;`);
    /// an unknown one stays as written.
    mutating func decodeReference() -> [UInt8] {
        let start = position
        position += 1
        if position < bytes.count, bytes[position] == UInt8(ascii: "#") {
            position += 1
            var hex = false
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "x") {
                hex = true
                position += 1
            }
            var scalar: UInt32 = 0
            var digits = 0
            while position < bytes.count, let digit = Self.digit(bytes[position], hex: hex) {
                scalar = min(scalar &* (hex ? 16 : 10) &+ digit, 0x110000)
                digits += 1
                position += 1
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ";") { position += 1 }
            guard digits > 0 else { return Array(bytes[start..<position]) }
            return Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
        }
        let named: [String: UInt8] = ["lt": 0x3C, "gt": 0x3E, "amp": 0x26, "quot": 0x22, "apos": 0x27]
        let nameStart = position
        while position < bytes.count, position - nameStart < 8, isNameByte(bytes[position]) { position += 1 }
        let name = String(decoding: bytes[nameStart..<position], as: UTF8.self)
        if let byte = named[name], position < bytes.count, bytes[position] == UInt8(ascii: ";") {
            position += 1
            return [byte]
        }
        if !name.isEmpty { valueHasUnknownReference = true }
        return Array(bytes[start..<position])
    }

    static func digit(_ byte: UInt8, hex: Bool) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where hex: return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where hex: return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    mutating func readName() -> String {
        let start = position
        while position < bytes.count, isNameByte(bytes[position]) { position += 1 }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    func isNameByte(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2D
            || byte == 0x5F
            || byte == 0x3A || byte == 0x2E || byte >= 0x80
    }

    func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    @discardableResult
    mutating func skipWhitespace() -> Bool {
        let start = position
        while position < bytes.count, isWhitespace(bytes[position]) { position += 1 }
        return position > start
    }

    func starts(with text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        for offset in 0..<count where bytes[position + offset] != text.utf8Start[offset] { return false }
        return true
    }

    func find(_ text: StaticString, from start: Int) -> Int? {
        let count = text.utf8CodeUnitCount
        var index = start
        while index + count <= bytes.count {
            if (0..<count).allSatisfy({ bytes[index + $0] == text.utf8Start[$0] }) { return index }
            index += 1
        }
        return nil
    }
}
