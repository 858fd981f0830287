import FHIR
import Hummingbird

/// `CodeSystem/$lookup` and `CodeSystem/$subsumes`.
extension TerminologyRoutes {
    /// The code system an operation is about: the instance, or `system` (the `version`, when
    /// given, must be the one held).
    func resolveCodeSystem(_ system: String?, version: String?, id: String?, operation: String) throws
        -> TerminologyCodeSystem
    {
        var found: TerminologyCodeSystem?
        if let id {
            guard let byId = terminology.codeSystem(id: id) else {
                throw FHIRError.notFound("CodeSystem/\(id) is not one of the R4 code systems this server holds")
            }
            if let system, system != byId.url {
                throw FHIRError.badRequest("CodeSystem/\(id) is \(byId.url), not \(system)")
            }
            found = byId
        } else if let system {
            found = terminology.codeSystem(url: system)
            guard found != nil else {
                throw FHIRError.notFound("The code system \(system) is not one this server holds")
            }
        }
        guard let codeSystem = found else {
            throw FHIRError.badRequest("\(operation) needs a system (or a CodeSystem instance)")
        }
        if let version, !version.isEmpty, version != codeSystem.version {
            throw FHIRError.notFound(
                "The code system \(codeSystem.url) is held in version \(codeSystem.version), not \(version)")
        }
        guard codeSystem.isEnumerated else {
            throw FHIRError(
                status: 422, code: "not-supported",
                "This server holds no concepts of \(codeSystem.url) (its content is '\(codeSystem.content)' in R4): it cannot look codes up in it"
            )
        }
        return codeSystem
    }

    /// The concept `code` of `codeSystem`: a 404 when the code system does not have it.
    func resolveConcept(_ code: String, in codeSystem: TerminologyCodeSystem) throws -> TerminologyConcept {
        guard let concept = codeSystem.concept(code) else {
            throw FHIRError(
                status: 404, code: "not-found", "The code system \(codeSystem.url) has no code '\(code.prefix(64))'")
        }
        return concept
    }

    @Sendable func lookup(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try target("$lookup", on: "CodeSystem", context: context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await OperationParameters.read(
            "$lookup", request: request, exchange: exchange, context: context)
        try parameters.allowOnly(["code", "system", "version", "coding", "date", "displayLanguage", "property"])
        var system = try parameters.string("system", maximumLength: 1024)
        var code = try parameters.string("code", maximumLength: 256)
        if let coding = try parameters.coding("coding") {
            guard code == nil else { throw FHIRError.badRequest("$lookup takes a code or a coding, not both") }
            (system, code) = (coding.system ?? system, coding.code)
        }
        guard let code else { throw FHIRError.badRequest("$lookup needs a code (with its system) or a coding") }
        let version = try parameters.string("version", maximumLength: 64)
        let codeSystem = try resolveCodeSystem(system, version: version, id: id, operation: "$lookup")
        let concept = try resolveConcept(code, in: codeSystem)
        // `property` narrows the properties returned; without it, all are.
        let asked = Set(parameters.values.filter { $0.name == "property" }.compactMap { $0.value.stringValue })
        func wanted(_ property: String) -> Bool { asked.isEmpty || asked.contains(property) }
        var result: [JSONValue] = [
            Self.parameter("name", "valueString", .string(codeSystem.name)),
            Self.parameter("version", "valueString", .string(codeSystem.version)),
            Self.parameter("display", "valueString", .string(concept.display)),
        ]
        var properties: [(String, String, JSONValue)] = []
        if concept.abstract { properties.append(("notSelectable", "valueBoolean", true)) }
        if concept.inactive { properties.append(("inactive", "valueBoolean", true)) }
        if concept.deprecated { properties.append(("status", "valueCode", "deprecated")) }
        properties += codeSystem.parents(of: code).map { ("parent", "valueCode", .string($0)) }
        properties += codeSystem.children(of: code).map { ("child", "valueCode", .string($0)) }
        for (name, type, value) in properties where wanted(name) {
            result.append([
                "name": "property",
                "part": [Self.parameter("code", "valueCode", .string(name)), Self.parameter("value", type, value)],
            ])
        }
        return exchange.json(Self.parameters(result), status: .ok)
    }

    @Sendable func subsumes(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try target("$subsumes", on: "CodeSystem", context: context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await OperationParameters.read(
            "$subsumes", request: request, exchange: exchange, context: context)
        try parameters.allowOnly(["codeA", "codeB", "system", "version", "codingA", "codingB"])
        var system = try parameters.string("system", maximumLength: 1024)
        var codes: [String] = []
        for (codeName, codingName) in [("codeA", "codingA"), ("codeB", "codingB")] {
            if let code = try parameters.string(codeName, maximumLength: 256) {
                codes.append(code)
            } else if let coding = try parameters.coding(codingName) {
                if let codingSystem = coding.system {
                    guard system == nil || system == codingSystem else {
                        throw FHIRError.badRequest(
                            "$subsumes compares codes of one code system: \(codingName) is from \(codingSystem), not \(system ?? "")"
                        )
                    }
                    system = codingSystem
                }
                codes.append(coding.code)
            } else {
                throw FHIRError.badRequest("$subsumes needs \(codeName) (or \(codingName))")
            }
        }
        let version = try parameters.string("version", maximumLength: 64)
        let codeSystem = try resolveCodeSystem(system, version: version, id: id, operation: "$subsumes")
        let a = try resolveConcept(codes[0], in: codeSystem).code
        let b = try resolveConcept(codes[1], in: codeSystem).code
        let outcome: String
        if a == b {
            outcome = "equivalent"
        } else if codeSystem.subsumes(a, b) {
            outcome = "subsumes"
        } else if codeSystem.subsumes(b, a) {
            outcome = "subsumed-by"
        } else {
            outcome = "not-subsumed"
        }
        return exchange.json(Self.parameters([Self.parameter("outcome", "valueCode", .string(outcome))]), status: .ok)
    }
}
