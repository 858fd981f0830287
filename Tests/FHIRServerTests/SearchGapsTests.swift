import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// The search gaps a held-out suite found (issue 17): `$everything` paging and care dates,
/// includes beyond the bound, long OR lists, and `POST _search` paging by a stored key.
@Suite struct SearchGapsTests {
    static let backends = TestDatabases.backends

    static func entries(_ response: FHIRTestResponse, mode: String? = nil) -> [JSONValue] {
        (response.json?["entry"]?.arrayValue ?? []).filter { mode == nil || $0["search"]?["mode"]?.stringValue == mode }
    }

    static func keys(_ response: FHIRTestResponse, mode: String? = nil) -> [String] {
        entries(response, mode: mode).compactMap { entry in
            guard let type = entry["resource"]?["resourceType"]?.stringValue,
                let id = entry["resource"]?["id"]?.stringValue
            else { return nil }
            return "\(type)/\(id)"
        }
    }

    static func link(_ response: FHIRTestResponse, _ relation: String) -> String? {
        response.json?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == relation }?["url"]?.stringValue
    }

    /// Posts `resources` as one transaction (PUT each).
    static func put(_ client: any TestClientProtocol, _ resources: [String]) async throws {
        let entries = resources.map { text -> String in
            let value = try! JSONParser.parse(text)
            return
                #"{"resource":\#(text),"request":{"method":"PUT","url":"\#(value["resourceType"]!.stringValue!)/\#(value["id"]!.stringValue!)"}}"#
        }
        let bundle = #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#
        let response = try await client.fhir(.post, "", body: bundle)
        #expect(response.status == .ok, "\(response.text.prefix(300))")
    }

    static func observation(_ id: String, patient: String, date: String?, performer: String? = nil) -> String {
        let effective = date.map { #","effectiveDateTime":"\#($0)""# } ?? ""
        let by = performer.map { #","performer":[{"reference":"\#($0)"}]"# } ?? ""
        return
            #"{"resourceType":"Observation","id":"\#(id)","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/\#(patient)"}\#(effective)\#(by)}"#
    }

    /// ann: 12 Observations dated 2019-01..2019-12 plus one undated, a Condition from 2015, an
    /// Encounter in 2019-06 whose practitioner is `dr`; bob: two Observations.
    static func seedCharts(_ client: any TestClientProtocol) async throws {
        var resources = [
            #"{"resourceType":"Patient","id":"ann"}"#, #"{"resourceType":"Patient","id":"bob"}"#,
            #"{"resourceType":"Practitioner","id":"dr"}"#,
            #"{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/ann"},"onsetDateTime":"2015-03-01"}"#,
            #"{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/ann"},"period":{"start":"2019-06-10","end":"2019-06-11"},"participant":[{"individual":{"reference":"Practitioner/dr"}}]}"#,
            observation("undated", patient: "ann", date: nil),
            observation("b1", patient: "bob", date: "2019-01-01"),
            observation("b2", patient: "bob", date: "2020-01-01"),
        ]
        for month in 1...12 {
            resources.append(observation("a\(month)", patient: "ann", date: String(format: "2019-%02d-15", month)))
        }
        try await put(client, resources)
    }

    /// Follows `next` links from `path`, at most `limit` pages.
    static func walk(_ client: any TestClientProtocol, _ path: String, limit: Int = 50, headers: [String: String] = [:])
        async throws -> [FHIRTestResponse]
    {
        var pages: [FHIRTestResponse] = []
        var next: String? = path
        while let url = next, pages.count < limit {
            let page = try await client.fhir(.get, url.hasPrefix("http") ? pathOf(url) : url, headers: headers)
            #expect(page.status == .ok, "\(url): \(page.text.prefix(300))")
            pages.append(page)
            next = link(page, "next")
        }
        return pages
    }

    /// The audit trail puts an AuditEvent in the patient's compartment at every read of the
    /// record: `$everything` leaves them out unless `_type` names them, so its answer does not
    /// grow with each access (its own included).
    @Test(arguments: backends)
    func everythingLeavesOutAuditEventsUnlessNamed(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seedCharts(client)
            let audit =
                #"{"resourceType":"AuditEvent","id":"seen","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}},"entity":[{"what":{"reference":"Patient/ann"}}]}"#
            // A List of ann's refers to the AuditEvent: not brought in that way either.
            let list =
                #"{"resourceType":"List","id":"l1","status":"current","mode":"working","subject":{"reference":"Patient/ann"},"entry":[{"item":{"reference":"AuditEvent/seen"}}]}"#
            try await Self.put(client, [audit, list])
            let search = try await client.fhir(.get, "AuditEvent?patient=ann")
            #expect(Self.keys(search) == ["AuditEvent/seen"])
            let all = try await client.fhir(.get, "Patient/ann/$everything")
            #expect(
                all.json?["total"] == 18 && Self.keys(all).contains("List/l1")
                    && !Self.keys(all).contains("AuditEvent/seen"),
                "\(Self.keys(all))")
            let named = try await client.fhir(.get, "Patient/ann/$everything?_type=AuditEvent,Patient")
            #expect(Set(Self.keys(named)) == ["Patient/ann", "AuditEvent/seen"])
            let bob = try await client.fhir(.get, "Patient/bob/$everything?_type=AuditEvent")
            #expect(Self.keys(bob).isEmpty)
            // Every patient's at once (type level): the same.
            let everyone = try await client.fhir(.get, "Patient/$everything")
            #expect(
                Self.keys(everyone).contains("List/l1") && !Self.keys(everyone).contains("AuditEvent/seen"),
                "\(Self.keys(everyone))")
            let everyoneNamed = try await client.fhir(.get, "Patient/$everything?_type=AuditEvent")
            #expect(Self.keys(everyoneNamed) == ["AuditEvent/seen"])
            // A Bulk Data export of the patients keeps them: it is the record, not a chart.
            let exported = try await BulkExportTests.export(client, "Patient/$export")
            #expect(exported["AuditEvent"]?.map { $0["id"]?.stringValue } == ["seen"], "\(exported.keys)")
        }
    }

    /// A patient-scoped token's `$everything` leaves AuditEvents out too (its visibility is
    /// computed apart from the compartment walk), and gets them when `_type` names them. The
    /// AuditEvents are the audit trail's own, of the token's reads of its patient (a client
    /// may not write one on an audited server).
    @Test(arguments: backends)
    func everythingUnderAPatientTokenLeavesOutAuditEventsUnlessNamed(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AuthorizationRegressionTests.seed(harness)
            let a = try await harness.token("patient/*.rs", subject: "a", patient: "p1")
            #expect(try await harness.call(.get, "Patient/p1", token: a).status == .ok)
            let all = try await harness.call(.get, "Patient/p1/$everything", token: a)
            #expect(all.status == .ok)
            #expect(
                Self.keys(all).contains("Observation/o-p1") && !Self.keys(all).contains { $0.hasPrefix("AuditEvent/") },
                "\(Self.keys(all))")
            let audited = Self.keys(try await harness.call(.get, "AuditEvent?patient=p1", token: a))
            let named = try await harness.call(.get, "Patient/p1/$everything?_type=AuditEvent", token: a)
            #expect(
                !audited.isEmpty && Set(audited).isSubset(of: Set(Self.keys(named))), "\(audited) \(Self.keys(named))")
            #expect(Self.keys(named).allSatisfy { $0.hasPrefix("AuditEvent/") })
            #expect(AuthorizationRegressionTests.leaks(named).isEmpty, "\(named.text)")
        }
    }

    @Test(arguments: backends)
    func everythingPagesAndFiltersByCareDates(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seedCharts(client)
            let all = try await client.fhir(.get, "Patient/ann/$everything")
            // The patient, 13 Observations, the Condition, the Encounter, and the Practitioner it refers to.
            #expect(all.json?["total"] == 17)
            #expect(
                Self.keys(all).count == 17 && Self.keys(all).first == "Patient/ann"
                    && Self.keys(all).last == "Practitioner/dr")
            #expect(!Self.keys(all).contains { $0.hasPrefix("Observation/b") })
            // Pages of 5: every entry once, in the same order, with next links and a total.
            let pages = try await Self.walk(client, "Patient/ann/$everything?_count=5")
            #expect(pages.count == 4)
            #expect(pages.flatMap { Self.keys($0) } == Self.keys(all))
            #expect(pages.allSatisfy { $0.json?["total"] == 17 })
            #expect(Self.link(pages[0], "next")?.contains("_page=2") == true && Self.link(pages[3], "next") == nil)
            #expect(Self.link(pages[3], "last") == Self.link(pages[0], "last"))
            // start/end: care dates overlap the range; undated resources and the patient stay.
            let spring = try await client.fhir(
                .get, "Patient/ann/$everything?start=2019-03-01&end=2019-05-31&_type=Observation,Condition,Patient")
            #expect(
                Set(Self.keys(spring)) == [
                    "Patient/ann", "Observation/a3", "Observation/a4", "Observation/a5", "Observation/undated",
                ])
            let since2019 = try await client.fhir(.get, "Patient/ann/$everything?start=2019-06")
            #expect(
                Set(Self.keys(since2019)).isSuperset(of: [
                    "Encounter/e1", "Observation/a6", "Observation/a12", "Practitioner/dr",
                ]))
            #expect(!Self.keys(since2019).contains("Condition/c1") && !Self.keys(since2019).contains("Observation/a5"))
            let until2016 = try await client.fhir(.get, "Patient/ann/$everything?end=2016")
            #expect(Set(Self.keys(until2016)) == ["Patient/ann", "Condition/c1", "Observation/undated"])
            // The filters carry into the links.
            let filteredPages = try await Self.walk(client, "Patient/ann/$everything?start=2019-06&_count=2")
            #expect(filteredPages.flatMap { Self.keys($0) } == Self.keys(since2019))
            // _since: only what changed since; _type as before.
            let later = FHIRDateRange.instantString(milliseconds: Int64(Date().timeIntervalSince1970 * 1000) + 1)
            try await Task.sleep(for: .milliseconds(5))
            #expect(
                try await client.fhir(
                    .put, "Observation/a7", body: Self.observation("a7", patient: "ann", date: "2019-07-16")
                ).status == .ok)
            let changed = try await client.fhir(.get, "Patient/ann/$everything?_since=\(encodeQuery(later))")
            #expect(Self.keys(changed) == ["Observation/a7"])
            for bad in ["start=yesterday", "end=2019-13", "_count=-1", "_page=0", "_type=Nonsense"] {
                let response = try await client.fhir(.get, "Patient/ann/$everything?\(bad)")
                #expect(response.status == .badRequest, "\(bad): \(response.text.prefix(200))")
            }
            #expect(try await client.fhir(.get, "Patient/nobody/$everything").status == .notFound)
        }
    }

    @Test(arguments: backends)
    func typeLevelEverythingWalksEveryPatientInPages(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seedCharts(client)
            let ann = Self.keys(try await client.fhir(.get, "Patient/ann/$everything"))
            let bob = Self.keys(try await client.fhir(.get, "Patient/bob/$everything"))
            let pages = try await Self.walk(client, "Patient/$everything?_count=4")
            // Patients in id order, each whole, pages of 4 across the boundary between them.
            #expect(pages.flatMap { Self.keys($0) } == ann + bob)
            #expect(pages.dropLast().allSatisfy { Self.keys($0).count == 4 })
            #expect(Self.link(pages.last!, "next") == nil)
            let filtered = try await Self.walk(client, "Patient/$everything?_type=Patient")
            #expect(filtered.flatMap { Self.keys($0) } == ["Patient/ann", "Patient/bob"])
            for bad in ["_cursor=x", "_cursor=1:bad%20id", "_cursor=-1:ann", "_page=2"] {
                let response = try await client.fhir(
                    .get, "Patient/$everything?\(bad)", headers: ["Prefer": "handling=strict"])
                #expect(response.status == .badRequest, "\(bad): \(response.text.prefix(200))")
            }
            #expect(try await client.fhir(.get, "Observation/$everything").status == .methodNotAllowed)
        }
    }

    @Test(arguments: backends)
    func everythingShowsAndCountsOnlyWhatTheTokenMaySee(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AccessControlTests.seed(harness)
            // (Scopes without AuditEvent: the audit trail's events of these requests are in the compartment too.)
            let p1 = try await harness.token(
                "patient/Patient.rs patient/Observation.rs patient/Practitioner.rs", patient: "p1")
            let mine = try await harness.call(.get, "Patient/p1/$everything", token: p1)
            #expect(mine.status == .ok)
            // The Practitioner is outside what a patient/ scope sees: not shown, not counted.
            #expect(Set(Self.keys(mine)) == ["Patient/p1", "Observation/o-p1"] && mine.json?["total"] == 2)
            #expect(try await harness.call(.get, "Patient/p2/$everything", token: p1).status == .notFound)
            let all = try await harness.call(.get, "Patient/$everything", token: p1)
            #expect(Set(Self.keys(all)) == ["Patient/p1", "Observation/o-p1"])
            let admin = try await harness.token("user/Patient.rs user/Observation.rs user/Practitioner.rs")
            let everyone = try await harness.call(.get, "Patient/$everything", token: admin)
            #expect(
                Set(Self.keys(everyone)) == [
                    "Patient/p1", "Observation/o-p1", "Patient/p2", "Observation/o-p2", "Practitioner/dr",
                ])
            let noPatients = try await harness.token("user/Observation.rs")
            #expect(try await harness.call(.get, "Patient/$everything", token: noPatients).status == .forbidden)
        }
    }

    /// 1,100 Observations and 3 Conditions of one patient: a page's includes are bounded
    /// (1,000), every `_revinclude` gets its share, and the cut is said in an outcome entry.
    @Test(arguments: backends)
    func includesOverTheBoundAreSharedAndWarned(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            var resources = [#"{"resourceType":"Patient","id":"p"}"#]
            resources += (1...1100).map { Self.observation("o\($0)", patient: "p", date: "2020-01-01") }
            resources += (1...3).map {
                #"{"resourceType":"Condition","id":"c\#($0)","subject":{"reference":"Patient/p"}}"#
            }
            try await Self.put(client, resources)
            let one = try await client.fhir(.get, "Patient?_id=p&_revinclude=Observation:subject")
            #expect(Self.keys(one, mode: "include").count == 1000)
            let warning = Self.entries(one, mode: "outcome").first?["resource"]?["issue"]?.arrayValue?.first
            #expect(warning?["severity"] == "warning" && warning?["code"] == "incomplete")
            #expect(warning?["diagnostics"]?.stringValue?.contains("_revinclude=Observation:subject") == true)
            let both = try await client.fhir(
                .get, "Patient?_id=p&_revinclude=Observation:subject&_revinclude=Condition:subject")
            let included = Self.keys(both, mode: "include")
            #expect(included.filter { $0.hasPrefix("Condition/") }.count == 3)
            #expect(included.filter { $0.hasPrefix("Observation/") }.count == 500)
            #expect(Self.entries(both, mode: "outcome").count == 1)
            // Under the bound nothing is said.
            let few = try await client.fhir(.get, "Patient?_id=p&_revinclude=Condition:subject")
            #expect(Self.keys(few, mode: "include").count == 3 && Self.entries(few, mode: "outcome").isEmpty)
        }
    }

    /// SQLite answered 500 to about 500 OR values (its expression depth); both stores now run
    /// the longest lists the limits allow (1,000, the default and the most they may be set to),
    /// of strings (prefix ranges, SQLite's walk), ids, tokens with a system, and dates.
    @Test(arguments: backends)
    func orListsAsLongAsTheLimitsAllowRun(backend: TestBackend) async throws {
        #expect(
            SearchLimits.standard.orValues == SearchLimits.maximumValues
                && SearchLimits.standard.totalValues == SearchLimits.maximumValues)
        try await withFHIRApp(backend) { client in
            try await Self.put(
                client,
                [
                    #"{"resourceType":"Patient","id":"p1","name":[{"family":"Zed"}],"birthDate":"1970-01-01","identifier":[{"system":"urn:s","value":"v1"}]}"#,
                    #"{"resourceType":"Patient","id":"p2","name":[{"family":"Young"}],"birthDate":"1980-05-05","identifier":[{"system":"urn:s","value":"v2"}]}"#,
                ])
            for length in [SearchLimits.maximumValues] {
                let filler = (1..<length).map { "n\($0)" }
                let cases: [(String, [String], [String])] = [
                    ("family", ["zed"] + filler, ["p1"]),
                    ("_id", filler + ["p2"], ["p2"]),
                    ("identifier", ["urn:s|v1"] + filler.map { "urn:s|\($0)" }, ["p1"]),
                    ("birthdate", (0..<length).map { String(format: "19%02d-05-05", $0 % 100) }, ["p2"]),
                ]
                for (name, values, expected) in cases {
                    #expect(values.count == length)
                    let form = "\(name)=\(encodeQuery(values.joined(separator: ",")))"
                    let response = try await client.fhir(
                        .post, "Patient/_search", body: form, contentType: "application/x-www-form-urlencoded")
                    #expect(response.status == .ok, "\(length) \(name) values: \(response.text.prefix(300))")
                    #expect(
                        Self.keys(response).map { String($0.dropFirst("Patient/".count)) }.sorted() == expected,
                        "\(length) \(name) values")
                }
            }
            var tooMany = SearchLimits()
            #expect((try? tooMany.apply(["or-values=\(SearchLimits.maximumValues + 1)"])) == nil)
        }
    }

    /// A long `POST _search` pages by a stored key: the links are short whatever the form's
    /// size, answer the same criteria, and only for the client that posted them.
    @Test(arguments: backends)
    func postSearchPagesByAStoredKey(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let admin = try await harness.token("user/*.*")
            for index in 1...5 {
                let body = #"{"resourceType":"Patient","id":"p\#(index)","name":[{"family":"Fam\#(index)"}]}"#
                #expect(try await harness.call(.put, "Patient/p\(index)", token: admin, body: body).status == .created)
            }
            // 900 values of 100 characters: a 90 KB form.
            let filler = (1...900).map { "x\($0)-" + String(repeating: "q", count: 95) }
            let form = "family=" + encodeQuery((["fam"] + filler).joined(separator: ",")) + "&_count=2&_sort=_id"
            #expect(form.utf8.count > 90_000)
            let first = try await harness.call(
                .post, "Patient/_search", token: admin, body: form, contentType: "application/x-www-form-urlencoded")
            #expect(first.status == .ok, "\(first.text.prefix(300))")
            guard let next = Self.link(first, "next") else {
                Issue.record("no next link")
                return
            }
            #expect(next.utf8.count < 300 && next.contains("_getpages="), "\(next.prefix(300))")
            #expect(Self.link(first, "self")?.contains("_getpages=") == true)
            var ids = Self.keys(first)
            var url: String? = next
            while let page = url, ids.count < 10 {
                let response = try await harness.call(.get, pathOf(page), token: admin)
                #expect(response.status == .ok, "\(response.text.prefix(300))")
                ids += Self.keys(response)
                url = Self.link(response, "next")
            }
            #expect(ids == (1...5).map { "Patient/p\($0)" })
            // Another token, even of the same user with the same scopes, cannot page through it.
            let other = try await harness.token("user/*.*", expires: Date().addingTimeInterval(200))
            #expect(other != admin)
            let refused = try await harness.call(.get, pathOf(next), token: other)
            #expect(refused.status == .gone && refused.json?["resourceType"] == "OperationOutcome")
            #expect(!refused.text.contains("fam"), "the criteria leak: \(refused.text.prefix(300))")
            // Nor on another path, nor with other criteria, nor with an unknown key.
            #expect(
                try await harness.call(
                    .get, pathOf(next).replacingOccurrences(of: "/Patient?", with: "/Observation?"), token: admin
                ).status == .gone)
            #expect(try await harness.call(.get, pathOf(next) + "&family=x", token: admin).status == .badRequest)
            #expect(try await harness.call(.get, "Patient?_getpages=nonsense", token: admin).status == .gone)
            // A GET's links still carry its criteria.
            let get = try await harness.call(.get, "Patient?family=fam&_count=2", token: admin)
            #expect(Self.link(get, "next")?.contains("family=fam") == true)
        }
    }

    @Test func storedSearchesAreBounded() {
        let searches = StoredSearches(capacity: 3, lifetime: 60, maximumBytes: 1 << 20)
        let start = Date()
        let keys = (0..<5).map { searches.store([("family", "f\($0)")], path: "/Patient", owner: "a", now: start) }
        #expect(searches.count == 3)
        #expect(searches.parameters(key: keys[0], path: "/Patient", owner: "a", now: start) == nil)
        #expect(searches.parameters(key: keys[4], path: "/Patient", owner: "a", now: start)?.first?.value == "f4")
        #expect(searches.parameters(key: keys[4], path: "/Patient", owner: "b", now: start) == nil)
        #expect(
            searches.parameters(key: keys[4], path: "/Patient", owner: "a", now: start.addingTimeInterval(61)) == nil)
        let big = StoredSearches(capacity: 100, lifetime: 60, maximumBytes: 10_000)
        for index in 0..<10 {
            _ = big.store([("family", String(repeating: "x", count: 3000))], path: "/Patient\(index)", owner: "a")
        }
        #expect(big.count <= 3)
    }

    /// Attacker finding A3: a refused POST _search still took a key (and could push out others').
    @Test func aRefusedPostSearchKeepsNoKey() async throws {
        var configuration = FHIRServerConfiguration()
        let searches = StoredSearches()
        configuration.storedSearches = searches
        try await withFHIRApp(.sqlite, configuration: configuration) { client in
            let form = "application/x-www-form-urlencoded"
            let badDate = try await client.fhir(
                .post, "Patient/_search", body: "birthdate=not-a-date", contentType: form)
            #expect(badDate.status == .badRequest)
            #expect(
                try await client.fhir(.post, "Patient/_search", body: "birthdate=ge2020-99-99", contentType: form)
                    .status == .badRequest)
            #expect(searches.count == 0)
            #expect(try await client.fhir(.post, "Patient/_search", body: "family=x", contentType: form).status == .ok)
            #expect(searches.count == 1)
        }
    }

    /// Attacker finding A9: in a batch, `_getpages` (and `_cursor`) were dropped silently and
    /// the entry answered a plain search of every resource of the type.
    @Test func pagingKeysInABundleEntryAreRefused() async throws {
        try await withFHIRApp(.sqlite) { client in
            let batch =
                #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?_getpages=abc"}},{"request":{"method":"GET","url":"Patient?_cursor=1:x"}},{"request":{"method":"GET","url":"Patient?_count=1"}}]}"#
            let response = try await client.fhir(.post, "", body: batch)
            let statuses =
                response.json?["entry"]?.arrayValue?.compactMap { $0["response"]?["status"]?.stringValue } ?? []
            #expect(statuses.count == 3)
            #expect(statuses.prefix(2).allSatisfy { $0.hasPrefix("400") }, "\(statuses)")
            #expect(statuses.last?.hasPrefix("200") == true)
        }
    }

    /// Attacker finding: 1,500 searches from one client expired every other client's keys.
    /// One owner now drops only its own oldest, by count and by bytes.
    @Test func oneOwnersFloodKeepsOthersKeys() {
        let searches = StoredSearches(
            capacity: 1000, lifetime: 60, maximumBytes: 1 << 20, ownerCapacity: 10, ownerMaximumBytes: 8_000)
        let victim = searches.store([("family", "v")], path: "/Patient", owner: "victim")
        let flood = (0..<1500).map { searches.store([("family", "f\($0)")], path: "/Patient", owner: "flood") }
        #expect(searches.parameters(key: victim, path: "/Patient", owner: "victim")?.first?.value == "v")
        #expect(searches.count == 11)
        #expect(searches.parameters(key: flood[1499], path: "/Patient", owner: "flood")?.first?.value == "f1499")
        #expect(searches.parameters(key: flood[1489], path: "/Patient", owner: "flood") == nil)
        for _ in 0..<5 {
            _ = searches.store([("family", String(repeating: "x", count: 3000))], path: "/Patient", owner: "flood")
        }
        #expect(searches.count == 3)
        #expect(searches.parameters(key: victim, path: "/Patient", owner: "victim") != nil)
    }
}

/// Stable paging (issue 17): the `next` link carries a keyset cursor, so that writes between
/// pages neither shift nor repeat entries.
@Suite struct StablePagingTests {
    static let backends = TestDatabases.backends

    /// 25 Patients written one by one; page 1 of 10 is read, then a seen one is updated, an
    /// unseen one updated, an unseen one deleted and a new one created, then the rest is read.
    @Test(arguments: backends)
    func writesBetweenPagesNeitherShiftNorRepeat(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for index in 1...25 {
                let body = #"{"resourceType":"Patient","id":"p\#(index)","name":[{"family":"Fam"}],"gender":"female"}"#
                #expect(try await client.fhir(.put, "Patient/p\(index)", body: body).status == .created)
            }
            // Without criteria (the ordered keyset on both stores), and with one (SQLite's walk
            // of the driving index; PostgreSQL's ordered keyset).
            for (round, query) in ["Patient?_count=10", "Patient?family=fam&_count=10"].enumerated() {
                // A write in the very millisecond the first page is read counts as after it.
                try await Task.sleep(for: .milliseconds(3))
                let first = try await client.fhir(.get, query)
                var seen = SearchGapsTests.keys(first)
                #expect(seen.count == 10)
                let updatedSeen = seen[2], updatedUnseen = "Patient/p15", deleted = "Patient/p12"
                for key in [updatedSeen, updatedUnseen] {
                    let id = String(key.dropFirst("Patient/".count))
                    let body =
                        #"{"resourceType":"Patient","id":"\#(id)","name":[{"family":"Fam"}],"gender":"female","active":true}"#
                    #expect(try await client.fhir(.put, key, body: body).status == .ok)
                }
                if round == 0 {
                    #expect(try await client.fhir(.delete, deleted).status == .noContent)
                }
                #expect(
                    try await client.fhir(
                        .put, "Patient/new\(round)",
                        body: #"{"resourceType":"Patient","id":"new\#(round)","name":[{"family":"Fam"}]}"#
                    ).status == .created)
                var next = SearchGapsTests.link(first, "next")
                #expect(next?.contains("_cursor=") == true, "\(next ?? "no next link")")
                var pages = 1
                while let url = next, pages < 10 {
                    let page = try await client.fhir(.get, pathOf(url))
                    #expect(page.status == .ok, "\(page.text.prefix(300))")
                    seen += SearchGapsTests.keys(page)
                    next = SearchGapsTests.link(page, "next")
                    pages += 1
                }
                #expect(Set(seen).count == seen.count, "an entry repeats: \(seen)")
                let unchanged = (1...25).map { "Patient/p\($0)" }.filter {
                    ![updatedSeen, updatedUnseen, deleted].contains($0)
                }
                #expect(
                    Set(seen).isSuperset(of: unchanged), "an entry was skipped: \(Set(unchanged).subtracting(seen))")
                #expect(!seen.contains(deleted) && !seen.contains("Patient/new\(round)"))
                #expect(seen.contains(updatedSeen))
                // The ordered keyset places a resource updated since the first page where its
                // version then was; SQLite's walk leaves it out (its index rows are new).
                let walked = backend == .sqlite && round == 1
                #expect(seen.contains(updatedUnseen) == !walked, "\(seen)")
            }
            let bad = try await client.fhir(.get, "Patient?_cursor=o.1.2.Nonsense.x")
            #expect(bad.status == .badRequest)
        }
    }
}
