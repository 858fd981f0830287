@testable import FHIR
import Foundation
import Testing

/// The parser's budgets (issue 13): each limit refuses one step past it with a 400 that names
/// the limit, accepts the limit itself, and holds however the query is shaped.
@Suite struct SearchLimitsTests {
    func parse(
        _ pairs: [(String, String)], type: String? = "Patient", limits: SearchLimits = .standard, strict: Bool = true
    ) throws -> SearchQuery {
        try SearchQueryParser(limits: limits).parse(
            resourceType: type, parameters: pairs.map { (name: $0.0, value: $0.1) }, strict: strict)
    }

    /// The parse fails with a 400 `too-costly` whose message names `option`.
    func expectRefused(
        _ pairs: [(String, String)], type: String = "Patient", limits: SearchLimits = .standard, option: String
    ) {
        do {
            _ = try parse(pairs, type: type, limits: limits)
            Issue.record("accepted, but over \(option)")
        } catch let error as FHIRError {
            #expect(error.status == 400)
            #expect(error.issues.first?.code == "too-costly")
            #expect(error.description.contains("--search-limit \(option)="), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    static func chain(links: Int) -> String {
        // Patient.link leads to Patient (and RelatedPerson), so links can repeat.
        Array(repeating: "link:Patient", count: links).joined(separator: ".") + ".family"
    }

    @Test func chainLinks() throws {
        let limits = SearchLimits(chainLinks: 3)
        let accepted = try parse([(Self.chain(links: 3), "x")], limits: limits)
        #expect(accepted.clauses.count == 1)
        expectRefused([(Self.chain(links: 4), "x")], limits: limits, option: "chain-links")
        // The 4,000-link chain that held a server for 60 s is refused at once.
        let started = ContinuousClock.now
        expectRefused([(Self.chain(links: 4000), "x")], option: "chain-links")
        expectRefused(
            [(Array(repeating: "link", count: 4000).joined(separator: ".") + ".family", "x")], option: "chain-links")
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func untypedChainsAreBoundedBeforeTheyExpand() throws {
        // Each untyped link may lead to every type its reference points at; a handful of
        // links would ask for millions of alternatives.
        let started = ContinuousClock.now
        expectRefused(
            [("_has:Provenance:target:target.target.target.target.name", "x")], type: "Patient", option: "chain-targets"
        )
        expectRefused([("target.target.target.target._id", "x")], type: "Provenance", option: "chain-targets")
        #expect(ContinuousClock.now - started < .seconds(2))
        // A real untyped chain fits: Observation.subject leads to Patient, Group, Device, Location.
        let query = try parse([("subject.name", "x")], type: "Observation")
        guard case .chain(_, let targets) = query.clauses.first?.target else { Issue.record("not a chain"); return }
        #expect(targets.map(\.type).contains("Patient"))
        expectRefused(
            [("subject.name", "x")], type: "Observation", limits: SearchLimits(chainTargets: 1), option: "chain-targets"
        )
    }

    @Test func hasNesting() throws {
        func nested(_ depth: Int) -> String {
            Array(repeating: "_has:Patient:link", count: depth).joined(separator: ":") + ":family"
        }
        let limits = SearchLimits(hasNesting: 2)
        #expect(try parse([(nested(2), "x")], limits: limits).clauses.count == 1)
        expectRefused([(nested(3), "x")], limits: limits, option: "has-nesting")
        expectRefused([(nested(15), "x")], option: "has-nesting")
    }

    @Test func orValues() throws {
        let limits = SearchLimits(orValues: 5)
        let five = (1...5).map { "v\($0)" }.joined(separator: ",")
        #expect(try parse([("family", five)], limits: limits).clauses[0].values.count == 5)
        expectRefused([("family", five + ",v6")], limits: limits, option: "or-values")
        expectRefused([("_id", (1...1001).map { "p\($0)" }.joined(separator: ","))], option: "or-values")
        // Inside a chain too.
        expectRefused([("organization.name", five + ",v6")], limits: limits, option: "or-values")
    }

    @Test func parametersAndTotalValues() throws {
        let limits = SearchLimits(parameters: 3, totalValues: 4)
        #expect(try parse([("family", "a"), ("given", "b"), ("gender", "male")], limits: limits).clauses.count == 3)
        expectRefused(
            [("family", "a"), ("given", "b"), ("gender", "male"), ("name", "c")], limits: limits, option: "parameters")
        expectRefused([("family", "a,b,c"), ("given", "d,e")], limits: limits, option: "total-values")
        expectRefused(Array(repeating: ("family", "a"), count: 932), option: "parameters")
        // Ignored (unknown) parameters add nothing to the SQL and do not count.
        let lenient = try parse(
            [("family", "a"), ("nonsense", "b"), ("other", "c"), ("more", "d")], limits: limits, strict: false)
        #expect(lenient.clauses.count == 1 && lenient.ignored.count == 3)
    }

    @Test func includesAndSortKeys() throws {
        let limits = SearchLimits(includes: 2, sortKeys: 2)
        let twoIncludes = [("_include", "Patient:organization"), ("_revinclude", "Observation:subject")]
        #expect(try parse(twoIncludes, limits: limits).includes.count == 2)
        expectRefused(twoIncludes + [("_include", "Patient:general-practitioner")], limits: limits, option: "includes")
        #expect(try parse([("_sort", "family,-birthdate")], limits: limits).sort.count == 2)
        expectRefused([("_sort", "family,-birthdate,_id")], limits: limits, option: "sort-keys")
        expectRefused([("_sort", "family"), ("_sort", "birthdate,_id")], limits: limits, option: "sort-keys")
        expectRefused([("_sort", Array(repeating: "family", count: 1000).joined(separator: ","))], option: "sort-keys")
    }

    @Test func repeatedTypesCollapse() throws {
        let query = try parse([("_type", Array(repeating: "Patient", count: 500).joined(separator: ","))], type: nil)
        #expect(query.types == ["Patient"])
    }

    @Test func defaultsCoverWhatClientsSend() throws {
        // The longest chains, _has and sorts the suites and the workloads use.
        for (type, name, value) in [
            ("Observation", "subject:Patient.name", "x"), ("Observation", "patient.organization.name", "x"),
            ("Organization", "_has:Patient:organization:_has:Observation:subject:code", "x"),
            ("Observation", "_sort", "code,-value-quantity"),
        ] {
            _ = try parse([(name, value)], type: type)
        }
        #expect(try parse([("_id", (1...100).map { "p\($0)" }.joined(separator: ","))]).clauses[0].values.count == 100)
    }

    @Test func settingsByName() throws {
        var limits = SearchLimits.standard
        try limits.apply(["or-values=250", "sort-keys=2"])
        #expect(limits.orValues == 250 && limits.sortKeys == 2 && limits.chainLinks == SearchLimits.standard.chainLinks)
        for bad in ["or-values", "or-values=0", "or-values=-1", "or-values=x", "nonsense=3", "=3"] {
            #expect(throws: SearchLimitSettingError.self) { try limits.apply([bad]) }
        }
        #expect(SearchLimits.names.count == 8)
        #expect(SearchLimits.standard.summary.contains("chain-links (4)"))
    }

    @Test func serverBuiltIdListsAreNotLimited() throws {
        // A patient token's restriction to its compartment may name thousands of ids.
        let ids = (0..<5000).map { "id-\($0)" }
        let clause = SearchClause.id(in: ids)
        #expect(clause.values.count == 5000)
        #expect(clause.values.last == .token(system: nil, code: "id-4999"))
        // The same list from a client is refused.
        #expect(throws: FHIRError.self) { try parse([("_id", ids.joined(separator: ","))]) }
    }
}
