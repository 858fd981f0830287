import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// One test of the official FHIRPath suite (tests-fhir-r4.xml).
struct FHIRPathSuiteCase {
    var group = ""
    var name = ""
    var inputFile: String?
    var expression = ""
    /// `syntax`, `semantic`, `execution` (or `true`): the expression must be refused.
    var invalid: String?
    var predicate = false
    var mode: String?
    /// `checkOrderedFunctions="true"`: ordered functions on unordered collections are errors.
    var checksOrderedFunctions = false
    /// Expected output items: type name and text.
    var outputs: [(type: String, text: String)] = []
}

/// Reads the suite's XML with Foundation's SAX parser: groups, tests, expressions, outputs.
final class FHIRPathSuiteLoader: NSObject, XMLParserDelegate {
    private(set) var cases: [FHIRPathSuiteCase] = []
    private var group = ""
    private var current: FHIRPathSuiteCase?
    private var text = ""
    private var outputType = ""
    private var unnamedCount = 0

    static func load(_ url: URL) throws -> [FHIRPathSuiteCase] {
        let data = try Data(contentsOf: url)
        let parser = XMLParser(data: data)
        let loader = FHIRPathSuiteLoader()
        parser.delegate = loader
        guard parser.parse() else {
            throw CocoaError(
                .fileReadCorruptFile,
                userInfo: [
                    NSLocalizedDescriptionKey:
                        "\(url.path): \(parser.parserError.map(String.init(describing:)) ?? "unreadable XML")"
                ])
        }
        return loader.cases
    }

    func parser(
        _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        text = ""
        switch element {
        case "group": group = attributes["name"] ?? ""
        case "test", "modeTest":
            var test = FHIRPathSuiteCase()
            test.group = group
            if let name = attributes["name"] {
                test.name = name
            } else {
                unnamedCount += 1
                test.name = "\(group)#\(unnamedCount)"
            }
            test.inputFile = attributes["inputfile"]
            test.predicate = attributes["predicate"] == "true"
            test.mode = attributes["mode"]
            test.checksOrderedFunctions = attributes["checkOrderedFunctions"] == "true"
            current = test
        case "expression":
            current?.invalid = attributes["invalid"]
            if let mode = attributes["mode"] { current?.mode = mode }
        case "output": outputType = attributes["type"] ?? ""
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        switch element {
        case "expression": current?.expression = text
        case "output": current?.outputs.append((outputType, text))
        case "test", "modeTest":
            if let current { cases.append(current) }
            current = nil
        default: break
        }
    }
}
