import Foundation

/// Hostile request bodies: resources with hostile values, broken JSON, deep nesting, byte-order
/// marks, huge numbers, duplicate keys, and JSON Patches that copy and move documents into
/// themselves.
enum HostileBodies {
    /// A JSON string literal for `text`.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static let templates = [
        #"{"resourceType":"Patient","id":"ID","name":[{"family":"Hostile","given":["VALUE"]}],"gender":"female","birthDate":"1970-01-01","managingOrganization":{"reference":"Organization/org1"}}"#,
        #"{"resourceType":"Observation","id":"ID","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}],"text":"VALUE"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":72,"unit":"/min"}}"#,
        #"{"resourceType":"Organization","id":"ID","name":"VALUE","partOf":{"reference":"Organization/org1"}}"#,
        #"{"resourceType":"Encounter","id":"ID","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"reasonCode":[{"text":"VALUE"}]}"#,
        #"{"resourceType":"Patient","id":"ID","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">VALUE</div>"}}"#,
        #"{"resourceType":"Bundle","id":"ID","type":"collection","entry":[{"resource":{"resourceType":"Patient","name":[{"family":"VALUE"}]}}]}"#,
        #"{"resourceType":"Parameters","parameter":[{"name":"VALUE","valueString":"x"}]}"#,
    ]

    /// A create or update body; its kind.
    static func resourceBody(_ random: inout SeededRandom) -> (String, [UInt8]) {
        var text = random.pick(templates)
        text = text.replacingOccurrences(
            of: "\"ID\"",
            with: jsonString(
                random.chance(0.7) ? random.pick(HostileVocabulary.ids) : random.pick(HostileVocabulary.oddIds)))
        let value: String
        var kind = "valid"
        switch random.below(100) {
        case 0..<40: value = "Hostile"
        case 40..<60:
            kind = "odd-value"
            value = String(jsonString(random.pick(HostileVocabulary.oddValues)).dropFirst().dropLast())
        case 60..<70:
            kind = "script"
            value = random.pick([
                #"<script>alert(1)</script>"#, #"<img src=x onerror=alert(1)>"#,
                #"<a href=\"javascript:alert(1)\">x</a>"#, "</div><div>", "<!--",
            ])
        case 70..<80:
            kind = "escapes"
            value = random.pick([#"\u0000"#, #"\ud800"#, #"\udfff\ud800"#, #"\u"#, #"\x41"#, #"\"#, #"\uZZZZ"#])
        default:
            kind = "long-string"
            value = String(
                repeating: random.pick(["a", "\u{E9}", "\u{1F600}", "\\\""]),
                count: random.size(small: 1000, large: 200_000))
        }
        text = text.replacingOccurrences(of: "VALUE", with: value)
        var bytes = Array(text.utf8)
        switch random.below(100) {
        case 0..<45: break
        case 45..<52:
            kind = "bom"
            bytes = [0xEF, 0xBB, 0xBF] + bytes
        case 52..<60:
            kind = "broken"
            bytes = Array(bytes.prefix(random.below(bytes.count)))
            if random.chance(0.5) {
                bytes += Array(random.pick(["}", "]", ",", "\"", "garbage", "}}}}", "\u{0}", "{\"a\":"]).utf8)
            }
        case 60..<68:
            kind = "deep"
            let depth = random.size(small: 300, large: 100_000)
            let (open, close) = random.pick([("[", "]"), ("{\"a\":", "}"), ("{\"extension\":[", "]}")])
            let deep =
                String(repeating: open, count: depth) + "1"
                + String(repeating: close, count: random.chance(0.9) ? depth : depth / 2)
            bytes = Array(
                text.replacingOccurrences(of: "\"gender\":\"female\"", with: "\"gender\":\(deep)").replacingOccurrences(
                    of: "\"status\":\"final\"", with: "\"status\":\(deep)"
                ).utf8)
            if !text.contains("gender"), !text.contains("final") { bytes = Array(deep.utf8) }
        case 68..<76:
            kind = "number"
            let number = random.pick([
                "1e999999", "-1e999999", String(repeating: "9", count: random.size(small: 400, large: 100_000)),
                "1e-99999", "-0", "0.0000000000000000000000000000001", "01", "1.", ".5", "+1", "NaN", "1E400",
            ])
            bytes = Array(
                text.replacingOccurrences(of: "\"value\":72", with: "\"value\":\(number)").replacingOccurrences(
                    of: "\"gender\":\"female\"", with: "\"gender\":\(number)"
                ).utf8)
        case 76..<86:
            kind = "duplicate-keys"
            let count = random.size(small: 4, large: 60_000)
            let key = random.pick(["id", "resourceType", "gender", "x", "meta"])
            let duplicates = (0..<count).map { index in
                "\"\(key)\(random.chance(0.5) ? "" : String(index)) \":\(random.chance(0.5) ? "1" : "\"Patient\"")"
                    .replacingOccurrences(of: " ", with: "")
            }
            bytes = Array(("{" + duplicates.joined(separator: ",") + "," + text.dropFirst()).utf8)
        case 86..<92:
            kind = "not-utf8"
            let position = random.below(bytes.count)
            bytes.insert(
                contentsOf: random.pick([
                    [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
                ]), at: position)
        default:
            kind = "odd-document"
            bytes = Array(
                random.pick([
                    "", " ", "null", "[]", "{}", "123", "\"Patient\"", "{\"resourceType\":null}",
                    "{\"resourceType\":{}}", "{\"resourceType\":\"Patient\",\"resourceType\":\"Observation\"}",
                    "{\"resourceType\":\"Patient\"}garbage",
                    "{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Patient\"}]}]}",
                    "\u{FEFF}{\"resourceType\":\"Patient\"}",
                ]).utf8)
        }
        return (kind, bytes)
    }

    /// A JSON Patch; its kind.
    static func patchBody(_ random: inout SeededRandom) -> (String, String) {
        let pointers = [
            "", "/", "/name", "/name/0", "/name/-", "/name/0/given/0", "/name/01", "/name/99999999999999999999",
            "/name/-1", "/id", "/resourceType", "/meta/versionId", "/~2", "/a~1b", "/x", "/x/y",
            "/extension/0/extension",
        ]
        switch random.below(10) {
        case 0, 1, 2:
            // Doubling: each copy appends the extension to its own list of extensions. The `add`
            // first keeps the bomb's size from compounding across requests on one resource.
            let copies = random.chance(0.9) ? 1 + random.below(8) : 8 + random.below(9)
            var ops = [
                #"{"op":"add","path":"/extension","value":[{"url":"http://x","valueString":"\#(String(repeating: "b", count: 32))","extension":[]}]}"#
            ]
            ops += Array(
                repeating: #"{"op":"copy","from":"/extension/0","path":"/extension/0/extension/-"}"#, count: copies)
            return ("copy-bomb", "[" + ops.joined(separator: ",") + "]")
        case 3:
            // Nesting past the parser's limit by copying a deep value into itself.
            let depth = 200 + random.below(56)
            let deep = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
            var ops = [
                #"{"op":"add","path":"/extension","value":[{"url":"http://x","valueString":"v"}]}"#,
                #"{"op":"add","path":"/x","value":\#(deep)}"#,
            ]
            ops += Array(repeating: #"{"op":"copy","from":"/x","path":"/x/a"}"#, count: 1 + random.below(12))
            return ("depth-bomb", "[" + ops.joined(separator: ",") + "]")
        case 4:
            let ops = (0..<random.size(small: 6, large: 3000)).map { _ in
                #"{"op":"move","from":\#(jsonString(random.pick(pointers))),"path":\#(jsonString(random.pick(pointers)))}"#
            }
            return ("move", "[" + ops.joined(separator: ",") + "]")
        case 5:
            return (
                "odd-document",
                random.pick([
                    "", "{}", "[", "[{}]", "[null]", "[{\"op\":\"add\"}]", "[{\"op\":\"nope\",\"path\":\"/x\"}]",
                    "{\"op\":\"add\",\"path\":\"/x\",\"value\":1}",
                    "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"resourceType\":\"Patient\"}}]",
                    "[{\"op\":\"remove\",\"path\":\"\"}]",
                ])
            )
        default:
            let ops = (0..<random.size(small: 5, large: 2000)).map { _ -> String in
                let op = random.pick(["add", "remove", "replace", "copy", "move", "test", "ADD", ""])
                var fields = [#""op":"\#(op)""#, #""path":\#(jsonString(random.pick(pointers)))"#]
                if random.chance(0.5) { fields.append(#""from":\#(jsonString(random.pick(pointers)))"#) }
                if random.chance(0.7) {
                    fields.append(
                        #""value":\#(random.pick(["1", "null", "\"x\"", "[]", "{}", "{\"family\":\"F\"}", "1e999999", "\"Observation\""]))"#
                    )
                }
                return "{" + fields.joined(separator: ",") + "}"
            }
            return ("ops", "[" + ops.joined(separator: ",") + "]")
        }
    }
}
