@testable import FHIR
import Testing

@Suite struct JSONPatchTests {
    func apply(_ patch: String, to document: String) throws -> JSONValue {
        try JSONPatch.apply(try JSONParser.parse(patch), to: try JSONParser.parse(document))
    }

    @Test func everyOperation() throws {
        let document = #"{"a":{"b":[1,2,3]},"c":"x","d~e/f":true}"#
        #expect(try apply(#"[{"op":"add","path":"/a/b/-","value":4}]"#, to: document)["a"]?["b"] == [1, 2, 3, 4])
        #expect(try apply(#"[{"op":"add","path":"/a/b/0","value":0}]"#, to: document)["a"]?["b"] == [0, 1, 2, 3])
        #expect(try apply(#"[{"op":"replace","path":"/a/b/1","value":9}]"#, to: document)["a"]?["b"] == [1, 9, 3])
        #expect(try apply(#"[{"op":"remove","path":"/a/b/0"}]"#, to: document)["a"]?["b"] == [2, 3])
        let moved = try apply(#"[{"op":"move","from":"/c","path":"/a/c"}]"#, to: document)
        #expect(moved["c"] == nil && moved["a"]?["c"] == "x")
        let copied = try apply(#"[{"op":"copy","from":"/a/b","path":"/copy"}]"#, to: document)
        #expect(copied["copy"] == [1, 2, 3] && copied["a"]?["b"] == [1, 2, 3])
        #expect(try apply(#"[{"op":"test","path":"/d~0e~1f","value":true}]"#, to: document)["d~e/f"] == true)
    }

    @Test(arguments: [
        (#"[{"op":"replace","path":"/missing","value":1}]"#, 422),
        (#"[{"op":"remove","path":"/a/b/7"}]"#, 422),
        (#"[{"op":"add","path":"/a/b/01","value":1}]"#, 422),
        (#"[{"op":"move","from":"/a","path":"/a/b/x"}]"#, 422),
        (#"[{"op":"test","path":"/c","value":"y"}]"#, 422),
        (#"[{"op":"add","path":"a","value":1}]"#, 400),
        (#"[{"op":"jump","path":"/a"}]"#, 400),
        (#"[{"op":"add","path":"/a"}]"#, 400),
        (#"{"op":"add"}"#, 400),
    ])
    func failuresAreClientErrors(patch: String, status: Int) {
        #expect {
            try apply(patch, to: #"{"a":{"b":[1,2,3]},"c":"x"}"#)
        } throws: { ($0 as? FHIRError)?.status == status }
    }
}
