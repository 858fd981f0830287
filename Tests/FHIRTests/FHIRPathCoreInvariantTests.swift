@testable import FHIR
import FHIRTestSupport
import Foundation
import JSON
import Testing

/// The engine against the constraints of the R4 core definitions (../shared/fhir/r4-core):
/// every constraint expression parses, and they evaluate without error on
/// the official examples (../shared/fhir/r4-examples). What invariant validation will run.
@Suite struct FHIRPathCoreInvariantTests {
    struct Constraint {
        var key: String
        var path: String
        var severity: String
        var expression: FHIRPathExpression
    }

    static func constraints() throws -> (parsed: [String: [Constraint]], refused: [String]) {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-core")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.hasPrefix("StructureDefinition-")
        }
        var byType: [String: [Constraint]] = [:], refused: [String] = []
        for file in files.sorted() {
            let definition = try JSONParser.parse(try Data(contentsOf: directory.appendingPathComponent(file)))
            guard ["resource", "complex-type"].contains(definition["kind"]?.stringValue),
                definition["derivation"]?.stringValue != "constraint", let type = definition["type"]?.stringValue
            else { continue }
            for element in definition["differential"]?["element"]?.arrayValue ?? [] {
                let path = (element["path"]?.stringValue ?? "").replacingOccurrences(of: "[x]", with: "")
                for constraint in element["constraint"]?.arrayValue ?? [] {
                    guard let text = constraint["expression"]?.stringValue, let key = constraint["key"]?.stringValue
                    else { continue }
                    do {
                        let expression = try FHIRPathExpression(text)
                        byType[type, default: []].append(
                            Constraint(
                                key: key, path: path, severity: constraint["severity"]?.stringValue ?? "",
                                expression: expression))
                    } catch {
                        refused.append("\(key) (\(path)): \(error)  [\(text)]")
                    }
                }
            }
        }
        return (byType, refused)
    }

    @Test func everyCoreConstraintParsesAndEvaluatesOnTheExamples() async throws {
        let (byType, refused) = try Self.constraints()
        let total = byType.values.reduce(0) { $0 + $1.count } + refused.count
        print("core constraints: \(total), refused by the parser: \(refused.count)")
        for line in refused { print("  REFUSED \(line)") }
        #expect(refused.isEmpty, "every constraint of the core definitions must parse")
        #expect(total > 200, "r4-core should hold over 200 constraint expressions, found \(total)")

        let examples = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-examples")
        var evaluations = 0, violations: [String] = [], errors: [String] = []
        let domainConstraints = byType["DomainResource"] ?? []
        let schemaDataTypes = Set(StructureSchema.r4.dataTypeNodes.keys)
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        // A few examples (large code systems and value sets) have over 100,000 elements.
        environment.limits.maximumCollectionSize = 2_000_000
        environment.limits.maximumSteps = 50_000_000
        for (number, file) in try FileManager.default.contentsOfDirectory(atPath: examples.path).sorted().enumerated() {
            if number % 20 == 0 { await Task.yield() }
            guard file.hasSuffix(".json"),
                let resource = try? JSONParser.parse(try Data(contentsOf: examples.appendingPathComponent(file))),
                let type = resource["resourceType"]?.stringValue
            else { continue }
            let isDomainResource = !["Bundle", "Binary", "Parameters"].contains(type)
            let applicable =
                (byType[type] ?? [])
                + (isDomainResource ? domainConstraints : []).map { constraint in
                    var rebased = constraint
                    rebased.path = type
                    return rebased
                }
            // The data types' constraints (Period per-1, Reference ref-1, Extension ext-1, ...)
            // on every element of that type, found once per resource.
            var elementsByType: [String: [FHIRPathItem]] = [:]
            var allElements: [FHIRPathItem] = []
            for item in try FHIRPathExpression("descendants()").evaluate(on: resource, environment: environment) {
                elementsByType[FHIRPathTypes.typeName(item).name, default: []].append(item)
                if case .node(let node) = item, case .resource = node.type {} else { allElements.append(item) }
            }
            var work: [(Constraint, [FHIRPathItem]?)] = applicable.map { ($0, nil) }
            // Element's ele-1 (every element has a value or children) on every element.
            work += (byType["Element"] ?? []).map { ($0, allElements) }
            for (typeName, items) in elementsByType where schemaDataTypes.contains(typeName) {
                work += (byType[typeName] ?? []).filter { $0.path == typeName }.map { ($0, items) }
            }
            for (constraint, elements) in work {
                do {
                    let contexts =
                        try elements
                        ?? FHIRPathExpression(constraint.path).evaluate(on: resource, environment: environment)
                    for context in contexts {
                        evaluations += 1
                        let result = try constraint.expression.evaluate(
                            on: resource, context: [context], environment: environment)
                        if result.count == 1, case .boolean(false)? = result[0].systemValue {
                            violations.append("\(file) \(constraint.key) (\(constraint.severity))")
                        }
                    }
                } catch {
                    errors.append("\(file) \(constraint.key): \(error)  [\(constraint.expression.text)]")
                }
            }
        }
        print(
            "core constraints on the examples: \(evaluations) evaluations, \(violations.count) false, \(errors.count) errors"
        )
        for line in violations { print("  FALSE \(line)") }
        for line in errors { print("  ERROR \(line)") }
        #expect(evaluations > 1000)
        #expect(errors.isEmpty, "no core constraint may fail to evaluate on an official example")
        // The examples break only best-practice warnings (pdf-0, dom-6, tst-0), never an error-severity rule.
        #expect(
            violations.allSatisfy { $0.hasSuffix("(warning)") },
            "an official example fails an error-severity constraint")
    }
}
