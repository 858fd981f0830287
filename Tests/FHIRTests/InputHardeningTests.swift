import FHIR
import FHIRTestSupport
import Foundation
import Testing

/// Hostile input below the HTTP layer (issue 13): duplicate keys found in linear time, JSON
/// Patch held to size, depth and operation limits, narratives checked against FHIR's XHTML
/// rules, and the ids `.` and `..` refused.
@Suite struct InputHardeningTests {
    /// An object of `count` distinct members, then `tail`.
    static func wideObject(_ count: Int, tail: String = "") -> String {
        "{" + (0..<count).map { "\"k\($0)\":0" }.joined(separator: ",") + tail + "}"
    }

    @Test func duplicateKeysAreFoundInLinearTime() throws {
        // 200,000 members: a scan of every earlier key would take 2·10¹⁰ comparisons.
        let started = Date()
        let wide = try JSONParser.parse(Self.wideObject(200_000))
        #expect(wide.objectValue?.count == 200_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Self.wideObject(200_000, tail: ",\"k199999\":1")) }
        #expect(Date().timeIntervalSince(started) < 10)
        // Small objects (the scan) and the change-over to the set both see duplicates.
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a":1,"b":2,"a":3}"#) }
        for count in [15, 16, 17, 40] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Self.wideObject(count, tail: ",\"k0\":1")) }
            #expect(throws: JSONParseError.self) {
                try JSONParser.parse(Self.wideObject(count, tail: ",\"k\(count - 1)\":1"))
            }
            #expect(try JSONParser.parse(Self.wideObject(count, tail: ",\"x\":1")).objectValue?.count == count + 1)
        }
    }

    @Test func measureStopsAtItsCaps() throws {
        let value = try JSONParser.parse(#"{"a":[1,{"b":"xy"}],"c":null}"#)
        #expect(value.measure(byteCap: .max, depthCap: .max) == (bytes: 29, depth: 3))
        #expect(value.measure(byteCap: .max, depthCap: 1).depth == 2)  // more than the cap: stops there
        var deep: JSONValue = .array([])
        for _ in 0..<10_000 { deep = .array([deep]) }
        #expect(deep.measure(byteCap: .max, depthCap: 256).depth == 257)
    }

    static let patient: JSONValue = ["resourceType": "Patient", "id": "p", "name": [["family": "Doe"]]]

    static func operations(_ count: Int, _ make: (Int) -> JSONValue) -> JSONValue { .array((0..<count).map(make)) }

    /// The 2.2 KB patch of the issue: each `copy` doubles the resource; 40 of them would make
    /// terabytes. Refused at the operation that crosses the size limit.
    @Test func copiesCannotGrowAResourcePastTheSizeLimit() throws {
        let limits = JSONPatch.Limits(bytes: 1 << 20)
        let doubling = Self.operations(40) { _ in ["op": "add", "path": "/name/-", "value": ["family": "Doe"]] }
        #expect(try JSONPatch.apply(doubling, to: Self.patient, limits: limits)["name"]?.arrayValue?.count == 41)
        var copies: [JSONValue] = [
            [
                "op": "add", "path": "/extension",
                "value": [["url": "x", "valueString": .string(String(repeating: "x", count: 100))]],
            ]
        ]
        for _ in 0..<40 { copies.append(["op": "copy", "from": "/extension", "path": "/extension/-"]) }
        do {
            _ = try JSONPatch.apply(.array(copies), to: Self.patient, limits: limits)
            Issue.record("a patch that doubles the resource 40 times was applied")
        } catch let error as FHIRError {
            #expect(error.status == 422 && error.issues.first?.code == "too-costly")
        }
    }

    @Test func copiesCannotNestAResourcePastTheDepthLimit() throws {
        let limits = JSONPatch.Limits(depth: 64)
        var nesting: [JSONValue] = [["op": "add", "path": "/contained", "value": [["a": []]]]]
        var path = "/contained/0/a"
        for _ in 0..<100 {
            nesting.append(["op": "copy", "from": "/contained/0", "path": .string(path + "/-")])
            path += "/0/a"
        }
        #expect(throws: FHIRError.self) { try JSONPatch.apply(.array(nesting), to: Self.patient, limits: limits) }
        // Moves keep the size; moving back and forth at one level never nears the limit.
        let moves = Self.operations(80) { index in
            index % 2 == 0
                ? ["op": "move", "from": "/name", "path": "/alias"] : ["op": "move", "from": "/alias", "path": "/name"]
        }
        #expect(
            try JSONPatch.apply(moves, to: Self.patient, limits: JSONPatch.Limits(bytes: 200, depth: 4)) == Self.patient
        )
    }

    /// Each operation changes the document in place: a copy of every container on its path
    /// made 10,000 operations on a resource with a 100,000-item array take 16 s.
    @Test func patchOperationsCostTheirPathNotTheDocument() throws {
        let items = (0..<100_000).map { JSONValue.object(JSONObject([("url", .string("u\($0)"))])) }
        let document: JSONValue = ["resourceType": "Patient", "id": "p", "extension": .array(items)]
        let replaces = Self.operations(10_000) {
            ["op": "replace", "path": .string("/extension/\($0)/url"), "value": "x"]
        }
        let started = Date()
        let patched = try JSONPatch.apply(replaces, to: document, limits: .none)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(
            patched["extension"]?.arrayValue?[9_999]["url"] == "x"
                && patched["extension"]?.arrayValue?[10_000]["url"] == "u10000")
        #expect(document["extension"]?.arrayValue?[0]["url"] == "u0")  // the original is untouched
        let removes = Self.operations(1_000) { _ in ["op": "remove", "path": "/extension/0"] }
        #expect(
            try JSONPatch.apply(removes, to: document, limits: .none)["extension"]?.arrayValue?.first?["url"] == "u1000"
        )
    }

    @Test func patchesHaveAnOperationLimit() throws {
        let tests = Self.operations(11) { _ in ["op": "test", "path": "/id", "value": "p"] }
        #expect(try JSONPatch.apply(tests, to: Self.patient, limits: JSONPatch.Limits(operations: 11)) == Self.patient)
        do {
            _ = try JSONPatch.apply(tests, to: Self.patient, limits: JSONPatch.Limits(operations: 10))
            Issue.record("11 operations passed a limit of 10")
        } catch let error as FHIRError {
            #expect(error.status == 400)
        }
    }

    static func narrative(_ div: String) -> JSONValue {
        ["resourceType": "Patient", "text": ["status": "generated", "div": .string(div)]]
    }

    @Test(arguments: [
        #"<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="alert(1)"/></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p ONCLICK='alert(1)'>x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:alert(1)">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href=" JaVa&#x09;Script&#58;alert(1)">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript&colon;alert(1)">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href="data:text/html;base64,PHNjcmlwdD4=">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><iframe src="https://evil.example"></iframe></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><svg><script>1</script></svg></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a xlink:href="javascript:1">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><span style="background:url(javascript:alert(1))">x</span></div>"#,
        // CSS escapes and comments, as a CSS parser reads them (legacy engines ran these).
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="x:expr\65 ssion(alert(1))">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="x:\65xpression(alert(1))">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="x:expr/**/ession(alert(1))">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="-moz-b\69 nding:url(http://evil/x.xml#x)">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="background:url(javascript\3a alert(1))">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="background:url(java\73 cript:alert(1))">x</p></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p style="background:url('feed:javascript:alert(1)')">x</p></div>"#,
        // Only safe schemes: a scheme that wraps another URL is refused too.
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href="feed:javascript:alert(1)">x</a></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><a href="jar:https://evil.example/x.jar!/">x</a></div>"#,
        // Comments an HTML parser ends early, so that markup the XML reading hides runs.
        #"<div xmlns="http://www.w3.org/1999/xhtml"><!--><img src=x onerror=alert(1)>--></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><!---><img src="x" onerror="alert(1)"/>--></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><!-- a --!><img src="x" onerror="alert(1)"/>--></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><![CDATA[<script>1</script>]]></div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed</div>"#,
        #"<div xmlns="http://www.w3.org/1999/xhtml">x</div><script>1</script>"#,
        #"<p>not a div</p>"#,
    ])
    func unsafeNarrativesAreRefused(div: String) throws {
        let problems = NarrativeChecker.problems(Self.narrative(div))
        #expect(problems.count == 1)
        #expect(problems.first?.expression == ["Patient.text.div"])
        #expect(throws: FHIRError.self) {
            try ResourceValidator(checksStructure: false).validateCreate(Self.narrative(div), type: "Patient")
        }
    }

    @Test func safeNarrativesPass() throws {
        let div =
            #"<div xmlns="http://www.w3.org/1999/xhtml"><!-- note --><p class="x" style="color:red">Doe &amp; <b>Roe</b></p>"#
            + #"<a href="https://example.org/?a=1&amp;b=2">link</a><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/>"#
            + #"<table border="1"><tr><td colspan="2">1</td></tr></table><br/>"#
            + ##"<a href="#top">top</a><a href="Patient/1">relative</a><a href="mailto:a@example.org">mail</a><a href="tel:+1-555">tel</a>"##
            + #"<span style="font-family:'A\26 B'; /* a comment */ background:url(https://example.org/a.png)">x</span></div>"#
        #expect(NarrativeChecker.problem(inDiv: div) == nil)
        // Contained resources' narratives are checked too.
        let contained: JSONValue = [
            "resourceType": "Patient",
            "contained": [Self.narrative(#"<div xmlns="http://www.w3.org/1999/xhtml"><script/></div>"#)],
        ]
        #expect(NarrativeChecker.problems(contained).first?.expression == ["Patient.contained[0].text.div"])
    }

    /// Every narrative of the 717 official examples passes, so no real narrative is refused.
    @Test func officialExampleNarrativesPass() throws {
        let directory = TestDatabasesPath.examples
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(files.count == 717)
        for file in files {
            let resource = try JSONParser.parse(Data(contentsOf: directory.appendingPathComponent(file)))
            let problems = NarrativeChecker.problems(resource)
            #expect(problems.isEmpty, "\(file): \(problems.map(\.diagnostics))")
        }
    }

    @Test func dotSegmentsAreNotIds() {
        #expect(!FHIRResourceType.isValidId("."))
        #expect(!FHIRResourceType.isValidId(".."))
        #expect(FHIRResourceType.isValidId("..."))
        #expect(FHIRResourceType.isValidId("a.b"))
        #expect(FHIRResourceType.isValidId("1"))
    }
}
