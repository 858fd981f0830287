@testable import FHIR
import Foundation
import Testing

@Suite struct JSONTests {
    @Test func keepsMemberOrderAndNumberText() throws {
        let text = #"{"z":1.50,"a":[true,false,null],"m":{"k":"v"},"e":-0.5e-10,"i":100}"#
        let value = try JSONParser.parse(text)
        #expect(value.objectValue?.keys == ["z", "a", "m", "e", "i"])
        #expect(value["z"] == .number("1.50"))
        #expect(JSONWriter().string(value) == text)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#"["a\"b\\c\/d\n\t\u00e9\ud83d\ude00"]"#)
        #expect(value.arrayValue?.first == .string("a\"b\\c/d\n\té😀"))
    }

    /// Escapes at the start, the end, side by side and between runs, every control character,
    /// and non-ASCII text copied as it is.
    @Test(arguments: [
        ("", #""""#), ("plain", #""plain""#), ("\"", #""\"""#), ("\\", #""\\""#),
        ("a\"b\\c", #""a\"b\\c""#), ("\n\r\t", #""\n\r\t""#), ("end\n", #""end\n""#),
        ("\u{01}x\u{1F}", #""\u0001x\u001f""#), ("é😀/", #""é😀/""#), ("\u{7F}", "\"\u{7F}\""),
    ])
    func writesStringsWithTheEscapesRFC8259Requires(text: String, json: String) throws {
        var output: [UInt8] = []
        JSONWriter.writeString(text, into: &output)
        #expect(String(decoding: output, as: UTF8.self) == json)
        #expect(try JSONParser.parse(output) == .string(text))
    }

    @Test func everyControlCharacterIsEscapedAndReadBack() throws {
        let text = String(decoding: (0..<0x20).map { UInt8($0) } + Array("x".utf8), as: UTF8.self)
        var output: [UInt8] = []
        JSONWriter.writeString(text, into: &output)
        #expect(!output.dropFirst().dropLast().contains { $0 < 0x20 })
        #expect(try JSONParser.parse(output) == .string(text))
    }

    @Test(arguments: [
        ("{", 1, 2), ("{\"a\" 1}", 1, 6), ("[1,]", 1, 4), ("{\"a\":1,\"a\":2}", 1, 8), ("\n\n  tru", 3, 3),
        ("\"\\ud800\"", 1, 8), ("01", 1, 2), ("{\"a\":\"\u{01}\"}", 1, 7), ("[1] x", 1, 5),
    ])
    func reportsSyntaxErrorsWithLineAndColumn(text: String, line: Int, column: Int) {
        #expect {
            try JSONParser.parse(text)
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.line == line && error.column == column
        }
    }

    @Test func refusesDeepNestingInsteadOfCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    @Test func writerAgreesWithFoundation() throws {
        let directory = TestDatabasesPath.examples
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(files.count > 700)
        for file in files.prefix(120) {
            let data = try Data(contentsOf: directory.appendingPathComponent(file))
            // Our bytes, read by Foundation and written again, must mean what the file means.
            let ours = JSONWriter().bytes(try JSONParser.parse(Array(data)))
            let throughFoundation = try JSONSerialization.data(
                withJSONObject: try JSONSerialization.jsonObject(with: Data(ours)))
            let original = try JSONParser.parse(Array(data))
            #expect(try JSONParser.parse(Array(throughFoundation)).semanticallyEquals(original), "\(file)")
            #expect(
                String(decoding: ours, as: UTF8.self) == String(decoding: JSONWriter().bytes(original), as: UTF8.self))
        }
    }

    @Test func prettyOutputParsesBackToTheSameValue() throws {
        let value = try JSONParser.parse(#"{"a":[1,{"b":"c"}],"d":{},"e":[]}"#)
        let pretty = JSONWriter(pretty: true).string(value)
        #expect(pretty.contains("\n  \"a\": [\n"))
        #expect(try JSONParser.parse(pretty) == value)
    }

    @Test func semanticEqualityIgnoresOrderAndTrailingZeros() throws {
        let a = try JSONParser.parse(#"{"x":1.0,"y":[1,2]}"#)
        let b = try JSONParser.parse(#"{"y":[1,2],"x":1.00}"#)
        let c = try JSONParser.parse(#"{"y":[2,1],"x":1}"#)
        #expect(a.semanticallyEquals(b))
        #expect(!a.semanticallyEquals(c))
    }
}
