@testable import FHIR
import Testing

/// `_filter`'s grammar, precedence, values by parameter type, and its hostile inputs: every
/// error is a 400 that says where, every bound holds.
@Suite struct SearchFilterParserTests {
    let parser = SearchQueryParser()

    func filter(_ text: String, type: String? = "Patient") throws -> SearchFilter {
        let query = try parser.parse(resourceType: type, parameters: [(name: "_filter", value: text)], strict: true)
        guard query.clauses.count == 1, case .filter(let filter) = query.clauses[0].target else {
            Issue.record("no filter clause for \(text)")
            return .and([])
        }
        #expect(query.appliedParameters.first?.name == "_filter" && query.appliedParameters.first?.value == text)
        return filter
    }

    /// The test's parameter name and operator, in tree order.
    func tests(_ filter: SearchFilter) -> [String] {
        switch filter {
        case .and(let terms): return ["and("] + terms.flatMap(tests) + [")"]
        case .or(let terms): return ["or("] + terms.flatMap(tests) + [")"]
        case .not(let inner): return ["not("] + tests(inner) + [")"]
        case .test(let test): return ["\(test.name) \(test.op.rawValue)"]
        case .chain(let reference, let targets):
            return targets.map { "\(reference.code):\($0.type)." + tests($0.filter).joined(separator: " ") }
        case .clause(let clause): return [clause.name]
        case .member(let parameter, _, _): return ["\(parameter.code) in"]
        }
    }

    func error(_ text: String, type: String? = "Patient") -> String {
        do {
            _ = try parser.parse(resourceType: type, parameters: [(name: "_filter", value: text)], strict: false)
            Issue.record("'\(text)' parsed")
            return ""
        } catch let error as FHIRError {
            #expect(error.status == 400, "\(text)")
            return error.issues.map(\.diagnostics).joined(separator: "; ")
        } catch {
            Issue.record("\(text): \(error)")
            return ""
        }
    }

    @Test func notBindsTighterThanAndTighterThanOr() throws {
        #expect(
            tests(try filter(#"name co "pet" or given eq peter and birthdate ge 2014-10-10"#))
                == ["or(", "name co", "and(", "given eq", "birthdate ge", ")", ")"])
        #expect(
            tests(try filter("(gender eq male or gender eq female) and not (active eq true)"))
                == ["and(", "or(", "gender eq", "gender eq", ")", "not(", "active eq", ")", ")"])
        #expect(
            tests(try filter("family eq a AND family eq b Or family eq c")) == [
                "or(", "and(", "family eq", "family eq", ")", "family eq", ")",
            ])
        // `not` needs parentheses; a name that starts with "not" is a name.
        #expect(tests(try filter("not(family pr true)", type: "Patient")) == ["not(", "family pr", ")"])
    }

    @Test func valuesAreReadByTheParameterType() throws {
        guard
            case .and(let terms) = try filter(
                #"family eq "O\"Brien \u00e9" and identifier eq urn:x|1 and birthdate lt 1960 and general-practitioner re Practitioner/p1 and _id ne abc and _lastUpdated po 2020"#
            )
        else { Issue.record("not an and"); return }
        let values = terms.compactMap { term -> SearchValue? in
            if case .test(let test) = term { return test.value } else { return nil }
        }
        #expect(values.count == 6)
        #expect(values[0] == .string("O\"Brien é"))
        #expect(values[1] == .token(system: "urn:x", code: "1"))
        #expect(values[2] == .date(.lt, FHIRDateRange(parsing: "1960")!))
        #expect(values[3] == .reference(type: "Practitioner", id: "p1", url: nil))
        #expect(values[4] == .token(system: nil, code: "abc"))
        #expect(values[5] == .date(.eq, FHIRDateRange(parsing: "2020")!))
        guard
            case .test(let quantity) = try filter(
                "value-quantity ge 5.4|http://unitsofmeasure.org|mg", type: "Observation"),
            case .number(.ge, let number, _, _, let system, let code) = quantity.value
        else { Issue.record("not a quantity test"); return }
        #expect(number == 5.4 && system == "http://unitsofmeasure.org" && code == "mg")
        guard case .test(let present) = try filter("birthdate pr false") else { Issue.record("not a test"); return }
        #expect(present.value == .missing(true))
    }

    /// `in` / `ni` take a value set R4 core's required bindings expand to: its codes by system.
    @Test func valueSetsExpandToTheirCodes() throws {
        guard
            case .member(let parameter, let codes, let unqualified) = try filter(
                "gender in http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1")
        else {
            Issue.record("not a membership")
            return
        }
        let genders = ["female", "male", "other", "unknown"]
        #expect(parameter.code == "gender")
        #expect(codes == ["http://hl7.org/fhir/administrative-gender": genders] && unqualified == genders)
        guard case .not(.member) = try filter("gender ni http://hl7.org/fhir/ValueSet/administrative-gender") else {
            Issue.record("not a negated membership")
            return
        }
        // The largest set R4 core expands (spdx-license, 346 codes) counts against total-values.
        guard case .member(_, let licenses, _) = try filter("_tag in http://hl7.org/fhir/ValueSet/spdx-license") else {
            Issue.record("not a membership")
            return
        }
        #expect(licenses.values.reduce(0) { $0 + $1.count } > 300)
    }

    @Test func chainsLeadToEveryTypeWithTheParameter() throws {
        // Observation.subject may be a Group, Device, Location or Patient: Location and Patient have `name`.
        #expect(
            Set(tests(try filter(#"subject.name co "pet""#, type: "Observation"))) == [
                "subject:Location.name co", "subject:Patient.name co",
            ])
        #expect(
            tests(try filter("subject.organization.name eq x", type: "Observation")).contains(
                "subject:Patient.organization:Organization.name eq"))
        #expect(error("subject.name co x", type: nil).contains("needs a resource type"))
        #expect(error("gender.name eq x").contains("not a reference parameter"))
    }

    @Test func syntaxErrorsNameTheirCharacter() {
        let cases: [(String, String)] = [
            ("", "character 1"),
            ("family", "character 7: expected a space and an operator"),
            ("family eq", "character 10: expected a space and a value"),
            ("family zz x", "character 8: 'zz' is not a _filter operator"),
            ("family eq x and", "character 16"),
            ("family eq x fish", "character 13: expected 'and', 'or' or the end"),
            ("(family eq x", "character 13: expected ')'"),
            ("not family eq x", "character 5: 'family' is not a _filter operator"),
            (#"family eq "open"#, "character 11: the string is not closed"),
            (#"family eq "\q""#, #"character 12: '\q' is not a JSON string escape"#),
            ("1family eq x", "character 1: '1family' is not a search parameter name"),
        ]
        for (text, expected) in cases {
            let message = error(text)
            #expect(message.contains("_filter syntax error at") && message.contains(expected), "\(text): \(message)")
        }
    }

    @Test func unsupportedAndUnknownThingsAreRefusedByName() {
        #expect(error("nosuch eq 1").contains("unknown search parameter 'nosuch'"))
        #expect(error("gender co male").contains("'co' does not apply to the token parameter 'gender'"))
        #expect(
            error("gender in http://example.org/fhir/ValueSet/mine").contains(
                "knows only the required value sets of R4 core"))
        #expect(
            error("birthdate in http://hl7.org/fhir/ValueSet/administrative-gender").contains(
                "applies to token parameters"))
        #expect(
            error("link[type eq seealso].other re Patient/1").contains(
                "'[filter]' in a parameter path is not supported"))
        #expect(error("code-value-quantity eq 1", type: "Observation").contains("cannot be used in _filter"))
        #expect(error("birthdate eq yesterday").contains("is not a date"))
        #expect(error("value-quantity ge ge5", type: "Observation").contains("is not a quantity"))
        #expect(error("active pr maybe").contains("'pr' takes true or false"))
        // Unknown parameters are refused whatever Prefer: handling says (this parse is lenient).
        #expect(error("family eq x or nosuch eq y").contains("(characters 16-"))
    }

    @Test func hostileFiltersMeetTheirBounds() {
        let long = String(repeating: "family eq x or ", count: 300) + "family eq x"
        #expect(error(long).contains("longer than this server's limit of 4096"))
        let deep = String(repeating: "(", count: 40) + "family eq x" + String(repeating: ")", count: 40)
        #expect(error(deep).contains("nests deeper than this server's limit of 16"))
        let many = (0..<70).map { "family eq f\($0)" }.joined(separator: " or ")
        #expect(error(many).contains("more than this server's limit of 64 tests"))
        #expect(error("subject.organization.partof.partof.partof.name eq x", type: "Observation").contains("links"))
        // Garbage of every kind ends in a 400, never a crash.
        for text in [
            "\u{0}", "((((", "))))", "\"", "a eq \"\\u12", "not(", "and", "or or", "family eq x and (", "📦 eq 1",
            "family\teq\tx",
        ] {
            do {
                _ = try parser.parse(
                    resourceType: "Patient", parameters: [(name: "_filter", value: text)], strict: true)
            } catch let error as FHIRError {
                #expect(error.status == 400, "\(text)")
            } catch {
                Issue.record("\(text): \(error)")
            }
        }
    }
}
