import FHIR

/// The `patient/` restriction in SQL (``SearchTarget/patientVisible(patient:links:)``): a
/// semi-join on the reference index, so that its binds are a fixed few whatever the number of
/// resources the patient sees (a list of the visible ids bound one by one broke PostgreSQL's
/// 65,535-parameter limit past about 32,000 resources, and cost SQLite a second a search).
extension SearchSQLBuilder {
    /// Visible to `Patient/patient`: the patient itself; else a resource that refers to the
    /// patient through a parameter `links` lists for its type (any reference parameter for a
    /// type it does not list; none for a type listed without parameters, nor for another
    /// Patient), and none of whose reference index rows names another Patient.
    func patientVisibleCondition(
        patient: String, links: [String: [String]], alias: String, resourceType: String?, probe: Bool
    ) -> (String, [SQLValue]) {
        // SQLite is told to take the (type, id) index: left to itself it may read a probe's
        // rows from the (type, param, target_id) one, which holds every link of the patient,
        // for each candidate (a compartment search of 40,000 Observations took 20 s so).
        let byResource = dialect == .sqlite ? " INDEXED BY idx_reference_resource" : ""
        let namesNoOther =
            "NOT EXISTS (SELECT 1 FROM idx_reference po\(byResource) WHERE po.type = \(alias).type AND po.id = \(alias).id"
            + " AND po.target_type = ? AND po.target_id <> ?)"
        let otherBinds: [SQLValue] = [.text("Patient"), .text(patient)]
        guard let resourceType else {
            return anyTypeVisibleCondition(patient: patient, links: links, alias: alias, namesNoOther: namesNoOther)
        }
        if resourceType == "Patient" { return ("\(alias).id = ?", [.text(patient)]) }
        let parameters = links[resourceType]
        if let parameters, parameters.isEmpty { return ("1 = 0", []) }
        let parameterTest = parameters.map { " AND pv.param IN (\(Self.placeholders($0.count)))" } ?? ""
        let parameterBinds = (parameters ?? []).map(SQLValue.text)
        // A probe asks one candidate through the (type, id) index; otherwise the patient's
        // links are read from the (type, param, target_id) one.
        let link =
            probe
            ? "EXISTS (SELECT 1 FROM idx_reference pv\(byResource) WHERE pv.type = ? AND pv.id = \(alias).id\(parameterTest) AND pv.target_type = ? AND pv.target_id = ?)"
            : "\(alias).id IN (SELECT pv.id FROM idx_reference pv WHERE pv.type = ?\(parameterTest) AND pv.target_id = ? AND pv.target_type = ?)"
        let linkBinds: [SQLValue] =
            [.text(resourceType)] + parameterBinds
            + (probe ? [.text("Patient"), .text(patient)] : [.text(patient), .text("Patient")])
        return ("(\(link) AND \(namesNoOther))", linkBinds + otherBinds)
    }

    /// The same across types (system search, `_type`): each row's type decides which
    /// parameters count.
    private func anyTypeVisibleCondition(
        patient: String, links: [String: [String]], alias: String, namesNoOther: String
    ) -> (String, [SQLValue]) {
        var typeTests: [String] = []
        var typeBinds: [SQLValue] = []
        for (type, parameters) in links.sorted(by: { $0.key < $1.key }) where type != "Patient" && !parameters.isEmpty {
            typeTests.append("pv.type = ? AND pv.param IN (\(Self.placeholders(parameters.count)))")
            typeBinds += [.text(type)] + parameters.map(SQLValue.text)
        }
        // Types outside the compartment count through any parameter; Patient never does.
        let listed = Set(links.keys).union(["Patient"]).sorted()
        typeTests.append("pv.type NOT IN (\(Self.placeholders(listed.count)))")
        typeBinds += listed.map(SQLValue.text)
        let link =
            "(\(alias).type, \(alias).id) IN (SELECT pv.type, pv.id FROM idx_reference pv WHERE pv.target_id = ? AND pv.target_type = ?"
            + " AND \(Self.anyOf(typeTests)))"
        return (
            "((\(alias).type = ? AND \(alias).id = ?) OR (\(link) AND \(namesNoOther)))",
            [.text("Patient"), .text(patient), .text(patient), .text("Patient")] + typeBinds + [
                .text("Patient"), .text(patient),
            ]
        )
    }
}
