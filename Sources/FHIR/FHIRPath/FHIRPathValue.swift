import Foundation
import JSON

// The engine lives inside the FHIR module (not a target of its own) because it needs the
// element types of the R4 definitions (`StructureSchema`) for `is`/`as`/`ofType()`, choice
// elements and typed primitives, and because validation invariants, search `_filter` and
// profiles all call it from this module: one engine, one type model, no plug-in protocol
// to keep in step with the schema.

/// Why an expression was refused or its evaluation stopped.
public struct FHIRPathError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The FHIRPath specification's three kinds of invalid expression, plus exceeded limits.
    public enum Kind: String, Sendable {
        /// The text is not a FHIRPath expression.
        case syntax
        /// It parses, but names a function, element or type that does not exist, or has the wrong arity.
        case semantic
        /// Evaluation met a value it cannot handle (a collection where a single value is needed, ...).
        case execution
        /// The expression or its evaluation exceeded one of `FHIRPathLimits`.
        case limit
    }

    /// Which kind of problem it is.
    public var kind: Kind
    /// What is wrong, for an OperationOutcome's diagnostics.
    public var message: String
    /// The offset in the expression (in characters) where the problem was found, for syntax errors.
    public var position: Int?

    /// An error of `kind`, found at `position` of the expression when known.
    public init(_ kind: Kind, _ message: String, at position: Int? = nil) {
        self.kind = kind
        self.message = message
        self.position = position
    }

    /// The kind, position and message in one line.
    public var description: String {
        if let position { return "\(kind.rawValue) error at \(position): \(message)" }
        return "\(kind.rawValue) error: \(message)"
    }
}

/// A Quantity: a decimal value and a UCUM unit or calendar duration keyword (`year`, `month`, ...).
public struct FHIRPathQuantity: Sendable, Equatable {
    /// The amount.
    public var value: Decimal
    /// UCUM code (`mg`, `'1'`) or a calendar keyword in the singular (`year`, `week`).
    public var unit: String

    /// A quantity of `value` in `unit`.
    public init(value: Decimal, unit: String) {
        self.value = value
        self.unit = unit
    }
}

/// The FHIR type of an element reached by navigation.
enum FHIRPathElementType: Sendable, Equatable {
    case primitive(PrimitiveType)
    /// A complex data type or backbone element: a node of `StructureSchema.r4`.
    case complex(Int)
    /// A resource, with its type name (nil when the object has no `resourceType`).
    case resource(String?)
    /// JSON the schema does not describe (members it does not know).
    case unknown
}

/// An element of a FHIR resource reached by navigation: its JSON value and FHIR type.
public struct FHIRPathNode: Sendable {
    /// The JSON value; nil for a primitive that only has `_name` (an id or extensions).
    public var value: JSONValue?
    /// The `_name` object beside a primitive: its id and extensions.
    public var primitiveElement: JSONObject?
    var type: FHIRPathElementType
    /// The element's name, for `trace()` and diagnostics.
    public var name: String
}

/// One item of a FHIRPath collection: a System value or a FHIR element.
public enum FHIRPathItem: Sendable {
    /// System.Boolean.
    case boolean(Bool)
    /// System.Integer (32-bit values, held in an `Int`).
    case integer(Int)
    /// A decimal with its scale: the digits after the point it was written with (`1.50` has
    /// 2), which Foundation's `Decimal` drops and `toString()` and `precision()` keep.
    case decimal(Decimal, scale: Int)
    /// System.String.
    case string(String)
    /// System.Date.
    case date(FHIRPathDateTime)
    /// System.DateTime.
    case dateTime(FHIRPathDateTime)
    /// System.Time.
    case time(FHIRPathDateTime)
    /// System.Quantity.
    case quantity(FHIRPathQuantity)
    /// An element of a FHIR resource (a primitive, a complex value or a resource).
    case node(FHIRPathNode)

    /// A FHIR element of the given type.
    static func element(_ value: JSONValue?, _ extras: JSONObject?, _ type: FHIRPathElementType, _ name: String)
        -> FHIRPathItem
    {
        .node(FHIRPathNode(value: value, primitiveElement: extras, type: type, name: name))
    }

    /// The JSON value of a FHIR element.
    var nodeValue: JSONValue? {
        if case .node(let node) = self { return node.value }
        return nil
    }

    /// The System value of a FHIR primitive (or the item itself when it is one); nil for
    /// complex elements and primitives without a value.
    var systemValue: FHIRPathItem? {
        guard case .node(let node) = self else { return self }
        switch node.type {
        case .primitive(let primitive):
            guard let value = node.value else { return nil }
            return Self.systemValue(of: value, as: primitive)
        case .complex(let index):
            guard StructureSchema.r4.nodes[index].isQuantityLike, let object = node.value?.objectValue else {
                return nil
            }
            guard case .number(let text)? = object["value"], let number = Decimal(string: text) else { return nil }
            let system = object["system"]?.stringValue
            var unit = (system == nil || system == "http://unitsofmeasure.org") ? object["code"]?.stringValue : nil
            unit = unit ?? object["unit"]?.stringValue ?? "1"
            return .quantity(FHIRPathQuantity(value: number, unit: unit!))
        case .unknown:
            guard let value = node.value else { return nil }
            switch value {
            case .bool(let flag): return .boolean(flag)
            case .string(let text): return .string(text)
            case .number(let text): return Self.number(text)
            default: return nil
            }
        case .resource: return nil
        }
    }

    static func systemValue(of value: JSONValue, as primitive: PrimitiveType) -> FHIRPathItem? {
        switch (primitive, value) {
        case (.boolean, .bool(let flag)): return .boolean(flag)
        case (.integer, .number(let text)), (.positiveInt, .number(let text)), (.unsignedInt, .number(let text)):
            return Self.number(text)
        case (.decimal, .number(let text)): return decimal(text: text)
        case (.date, .string(let text)): return FHIRPathDateTime(parsing: text, kind: .date).map { .date($0) }
        case (.dateTime, .string(let text)), (.instant, .string(let text)):
            guard let parsed = FHIRPathDateTime(parsing: text, kind: .dateTime) else { return .string(text) }
            return .dateTime(parsed)
        case (.time, .string(let text)): return FHIRPathDateTime(parsing: text, kind: .time).map { .time($0) }
        case (_, .string(let text)): return .string(text)
        case (_, .number(let text)): return Self.number(text)
        case (_, .bool(let flag)): return .boolean(flag)
        default: return nil
        }
    }

    /// A JSON number: an Integer within FHIRPath's 32 bits (so no operator can overflow a
    /// Swift `Int`), a Decimal otherwise.
    /// A decimal whose scale is the digits its value needs.
    static func fromDecimal(_ value: Decimal) -> FHIRPathItem {
        .decimal(value, scale: FHIRPathOperators.naturalScale(value))
    }

    /// A decimal read from text (`1.50`, `1.5e2`), keeping the scale the text gives it.
    static func decimal(text: String) -> FHIRPathItem? {
        guard let value = Decimal(string: text), value.isFinite else { return nil }
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...].replacingOccurrences(of: "+", with: "")) ?? 0
        }
        let fraction = mantissa.firstIndex(of: ".").map { mantissa.distance(from: $0, to: mantissa.endIndex) - 1 } ?? 0
        return .decimal(value, scale: min(max(0, fraction - exponent), 38))
    }

    static func number(_ text: String) -> FHIRPathItem? {
        if let integer = Int32(text) { return .integer(Int(integer)) }
        return decimal(text: text)
    }

    /// The text of the value as FHIRPath's `toString()` writes it; nil for complex elements.
    var stringForm: String? {
        switch systemValue {
        case .boolean(let flag)?: return flag ? "true" : "false"
        case .integer(let number)?: return String(number)
        case .decimal(let number, let scale)?: return FHIRPathOperators.text(of: number, scale: scale)
        case .string(let text)?: return text
        case .date(let value)?, .dateTime(let value)?, .time(let value)?: return value.text
        case .quantity(let quantity)?:
            let unit = FHIRPathUnits.isCalendarKeyword(quantity.unit) ? quantity.unit : "'\(quantity.unit)'"
            return "\(quantity.value) \(unit)"
        default: return nil
        }
    }
}

extension StructureNode {
    /// Whether objects of this node are Quantities (or one of its profiles: Age, Duration, ...).
    var isQuantityLike: Bool {
        Self.quantityTypeNames.contains(name)
    }

    private static let quantityTypeNames: Set<String> = [
        "Quantity", "Age", "Distance", "Duration", "Count", "MoneyQuantity", "SimpleQuantity",
    ]
}
