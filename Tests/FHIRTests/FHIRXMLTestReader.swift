@testable import FHIR
import Foundation
import JSON
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads a FHIR XML resource into FHIR JSON, for the three FHIRPath suite inputs that exist
/// only as XML. The R4 element definitions say which elements repeat (arrays), what JSON kind
/// a primitive's `value` attribute takes, and where a resource is nested. Test support only:
/// no comments, no `xml:lang`, XHTML rendered back as text.
final class FHIRXMLTestReader: NSObject, XMLParserDelegate {
    /// An element as read: its name, attributes, children and (for XHTML) its markup.
    final class Element {
        var name: String
        var attributes: [String: String]
        var children: [Element] = []
        var markup = ""
        init(name: String, attributes: [String: String]) {
            self.name = name
            self.attributes = attributes
        }
    }

    private var stack: [Element] = []
    private var root: Element?
    private var xhtmlDepth = 0

    static func read(_ url: URL) -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let reader = FHIRXMLTestReader()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        guard parser.parse(), let root = reader.root else { return nil }
        return resource(root)
    }

    func parser(
        _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if xhtmlDepth > 0 || element == "div" {
            xhtmlDepth += 1
            let attributeText = attributes.sorted { $0.key < $1.key }.map { " \($0.key)=\"\($0.value)\"" }.joined()
            stack.last?.markup += "<\(element)\(attributeText)>"
            if xhtmlDepth == 1 {
                let div = Element(name: element, attributes: [:])
                div.markup = "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                stack.last?.children.append(div)
                stack.append(div)
            }
            return
        }
        let node = Element(name: element, attributes: attributes)
        stack.last?.children.append(node)
        if root == nil { root = node }
        stack.append(node)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if xhtmlDepth > 0 { stack.last?.markup += string }
    }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        if xhtmlDepth > 0 {
            xhtmlDepth -= 1
            stack.last?.markup += "</\(element)>"
            if xhtmlDepth == 0 { stack.removeLast() }
            return
        }
        stack.removeLast()
    }

    private static var schema: StructureSchema { .r4 }

    static func resource(_ element: Element) -> JSONValue? {
        guard let node = schema.resourceNodes[element.name] else { return nil }
        var object = JSONObject([("resourceType", .string(element.name))])
        fill(&object, from: element, node: node)
        return .object(object)
    }

    /// Sets the members of `object` from the child elements, by the node's element rules.
    private static func fill(_ object: inout JSONObject, from element: Element, node: Int) {
        let structure = schema.nodes[node]
        if let id = element.attributes["id"] { object["id"] = .string(id) }
        if let url = element.attributes["url"] { object["url"] = .string(url) }
        var order: [String] = []
        var values: [String: [JSONValue]] = [:], extras: [String: [JSONValue]] = [:]
        for child in element.children {
            guard let rule = structure.members[child.name] else { continue }
            if !order.contains(child.name) { order.append(child.name) }
            var value: JSONValue = .null
            var extra: JSONValue = .null
            switch rule.type {
            case .primitive(let primitive):
                if child.name == "div" {
                    value = .string(child.markup)
                } else if let text = child.attributes["value"] {
                    switch primitive.jsonKind {
                    case .boolean: value = .bool(text == "true")
                    case .number: value = .number(text)
                    case .string: value = .string(text)
                    }
                }
                var beside = JSONObject()
                fill(&beside, from: child, node: schema.primitiveElementNode)
                if beside.count > 0 { extra = .object(beside) }
            case .complex(let index):
                var nested = JSONObject()
                fill(&nested, from: child, node: index)
                value = .object(nested)
            case .resource:
                value = child.children.first.flatMap(resource) ?? .null
            }
            values[child.name, default: []].append(value)
            extras[child.name, default: []].append(extra)
        }
        for name in order {
            let rule = structure.members[name]!
            let repeating = structure.elements[rule.element].isRepeating
            let items = values[name]!, extraItems = extras[name]!
            if items.contains(where: { $0 != .null }) {
                object[name] = repeating ? .array(items) : items[0]
            }
            if extraItems.contains(where: { $0 != .null }) {
                object["_" + name] = repeating ? .array(extraItems) : extraItems[0]
            }
        }
    }
}
