@testable import FHIR
import Foundation
import JSON
import Testing

/// Expressions and resources an attacker writes: each must end in a result or a
/// `FHIRPathError`, never a crash, a hang or unbounded memory.
@Suite struct FHIRPathHostileInputTests {
    static func limitError(_ body: () throws -> Void) -> FHIRPathError.Kind? {
        do {
            try body()
            return nil
        } catch let error as FHIRPathError {
            return error.kind
        } catch {
            return nil
        }
    }

    @Test func refusesOverlongAndOverdeepExpressions() {
        let long = String(repeating: "a", count: FHIRPathLimits().maximumExpressionLength + 1)
        #expect(Self.limitError { _ = try FHIRPathExpression(long) } == .limit)
        let parentheses = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(Self.limitError { _ = try FHIRPathExpression(parentheses) } == .limit)
        let chain = Array(repeating: "1", count: 5000).joined(separator: "+")
        #expect(Self.limitError { _ = try FHIRPathExpression(chain) } == .limit)
        let path = Array(repeating: "name", count: 3000).joined(separator: ".")
        #expect(Self.limitError { _ = try FHIRPathExpression(path) } == .limit)
        let negations = String(repeating: "-", count: 5000) + "1"
        #expect(Self.limitError { _ = try FHIRPathExpression(negations) } == .limit)
    }

    @Test func evaluatesExpressionsAtTheNestingLimit() throws {
        // Each `(1 + ...)` level is three levels of nesting: the operator, its right operand
        // and the parenthesis.
        let depth = FHIRPathLimits().maximumNestingDepth / 3 - 2
        let nested = String(repeating: "(1 + ", count: depth) + "1" + String(repeating: ")", count: depth)
        let sum = try FHIRPathExpression(nested).evaluate(on: ["resourceType": "Basic"])
        #expect(sum.first?.stringForm == String(depth + 1))
        // The deepest evaluation the limits allow: each where() is one level of nesting and
        // two of evaluation, so this recurses about as deep as the evaluator permits.
        let levels = FHIRPathLimits().maximumNestingDepth - 5
        let wheres = String(repeating: "where(", count: levels) + "true" + String(repeating: ")", count: levels)
        let deepest = try FHIRPathExpression(wheres)
        let outcome = Result { try deepest.evaluate(on: ["resourceType": "Basic"]) }
        if case .failure(let error) = outcome { #expect((error as? FHIRPathError)?.kind == .limit) }
        if case .success(let items) = outcome { #expect(items.count == 1) }
    }

    @Test func boundsWorkOnLargeResources() throws {
        // A Bundle of 2,000 entries: descendants() visits them all within the budget;
        // a quadratic distinct() over them does not fit a small budget.
        let entries = (0..<2000).map { index -> JSONValue in
            ["resource": ["resourceType": "Basic", "id": .string("b\(index)"), "code": ["text": .string("t\(index)")]]]
        }
        let bundle: JSONValue = ["resourceType": "Bundle", "type": "collection", "entry": .array(entries)]
        #expect(try FHIRPathExpression("descendants().count() > 6000").evaluateBoolean(on: bundle) == true)
        var tight = FHIRPathEnvironment()
        tight.limits.maximumSteps = 100_000
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression("descendants().distinct()").evaluate(on: bundle, environment: tight)
            } == .limit)
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression("entry.repeat(%resource.entry)").evaluate(on: bundle, environment: tight)
            } == .limit)
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression("entry.select(%resource.entry).select(%resource.entry).count()").evaluate(
                    on: bundle)
            } == .limit)
    }

    /// The step count follows the items an evaluation builds, not only its expression nodes:
    /// `select(entry)` once per entry builds N items each time, a quadratic amount of work in a
    /// few nodes per item (attacker finding A1). A `%resource` chain that does not read the
    /// focus is built once per evaluation, so sdf-8's shape stays linear.
    @Test func stepsCountTheItemsAnEvaluationBuilds() throws {
        let entries = (0..<1000).map { index -> JSONValue in
            ["resource": ["resourceType": "Basic", "id": .string("b\(index)")]]
        }
        let bundle: JSONValue = ["resourceType": "Bundle", "type": "collection", "entry": .array(entries)]
        var tight = FHIRPathEnvironment()
        tight.limits.maximumSteps = 50_000
        // 1,000 x 1,000 entries built through the focus: over 50,000 steps.
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression("entry.all(%resource.select(entry).count() = 1000)").evaluate(
                    on: bundle, environment: tight)
            } == .limit)
        // The same question on the focus-free chain: built once, then reused.
        #expect(
            try FHIRPathExpression("entry.all(%resource.entry.count() = 1000)").evaluateBoolean(
                on: bundle, environment: tight) == true)
        #expect(
            try FHIRPathExpression(
                "entry.tail().all(resource.id.startsWith(%resource.entry.first().resource.id.substring(0, 1)))"
            ).evaluateBoolean(on: bundle, environment: tight) == true)
        // A shared budget is charged the same items.
        var shared = FHIRPathEnvironment()
        shared.sharedBudget = FHIRPathStepBudget(steps: 50_000)
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression("entry.all(%resource.select(entry).count() = 1000)").evaluate(
                    on: bundle, environment: shared)
            } == .limit)
        #expect(shared.sharedBudget!.remaining < 0)
    }

    @Test func boundsStringsCollectionsAndRegularExpressions() throws {
        let basic: JSONValue = ["resourceType": "Basic"]
        let doubling =
            "(1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18|19|20|21|22|23|24|25).aggregate($total & $total, 'abcdefgh')"
        #expect(Self.limitError { _ = try FHIRPathExpression(doubling).evaluate(on: basic) } == .limit)
        #expect(Self.limitError { _ = try FHIRPathExpression("('ab' * 1)").evaluate(on: basic) } == .execution)
        let manyCharacters = "'\(String(repeating: "x", count: 200_000))'.toChars().count()"
        var roomy = FHIRPathEnvironment()
        roomy.limits.maximumExpressionLength = 300_000
        #expect(
            Self.limitError {
                _ = try FHIRPathExpression(manyCharacters, limits: roomy.limits).evaluate(on: basic, environment: roomy)
            } == .limit)
        // Backtracking patterns on 40 letters would run for days: stopped by the progress bound.
        for pattern in ["(a+)+$", "(a|a)*b", "(a*)*$", "(a|aa)+$"] {
            for function in ["matches", "replaceMatches"] {
                let call = function == "matches" ? "matches('\(pattern)')" : "replaceMatches('\(pattern)', 'x')"
                let expression = "'\(String(repeating: "a", count: 40))!'.\(call)"
                #expect(
                    Self.limitError { _ = try FHIRPathExpression(expression).evaluate(on: basic) } == .limit,
                    "\(pattern)")
            }
        }
        // Nested repetition that does not backtrack (R4 core's eld-20) runs.
        #expect(
            try FHIRPathExpression(
                "'Patient.name.given'.matches('[A-Za-z][A-Za-z0-9]*(\\\\.[a-z][A-Za-z0-9]*(\\\\[x])?)*')"
            ).evaluateBoolean(on: basic) == true)
        #expect(try FHIRPathExpression("'abc'.matches('^(ab|cd)c$')").evaluateBoolean(on: basic) == true)
    }

    @Test func numbersAndDatesAtTheirExtremesDoNotTrap() throws {
        let resource = try JSONParser.parse(
            #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":-9223372036854775808,"component":[{"code":{"text":"y"},"valueQuantity":{"value":1e300}}]}"#
        )
        for expression in [
            "-value", "value div -1", "value mod -1", "value * value", "component.value.value * 1e300",
            "@2014 + 1000000000000000 years", "@2014-01-01T00:00:00Z + 99999999999999999999 'ms'",
            "@T10:00 - 1e20 hours",
            "2147483647 * 2147483647", "(-2147483647 - 1).abs()", "1e400", "(1.0 / 3).round(1000)", "10.power(1000)",
            "'x'.substring(2147483647, 2147483647)", "'abc'.take(2147483647)", "{}.skip(-5)",
            "1000000000000000000000000000000000000000.0 div 0.000000001",
        ] {
            _ = try? FHIRPathExpression(expression).evaluate(on: resource)
        }
    }

    @Test func randomTokenSequencesNeverCrash() {
        let pieces = [
            "name", ".", "(", ")", "[", "]", "where(", "select(", "repeat(", "$this", "$index", "1", "1.5", "'s'",
            "@2014",
            "@T10:00", "+", "-", "*", "/", "and", "or", "implies", "is", "as", "|", "=", "~", "<", "{}", "%resource",
            "descendants()", "children()", "ofType(", "Quantity", "'mg'", "first()", ",", "iif(", "aggregate(",
            "$total",
        ]
        // A linear congruential sequence: the same expressions on every run.
        var state: UInt64 = 0x46_48_49_52
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let patient: JSONValue = ["resourceType": "Patient", "name": [["given": ["A", "B"]]], "birthDate": "2000"]
        for _ in 0..<3000 {
            let count = 1 + next(14)
            let expression = (0..<count).map { _ in pieces[next(pieces.count)] }.joined(separator: " ")
            do {
                _ = try FHIRPathExpression(expression).evaluate(on: patient)
            } catch {
                #expect(error is FHIRPathError, "\(expression): \(error)")
            }
        }
    }
}
