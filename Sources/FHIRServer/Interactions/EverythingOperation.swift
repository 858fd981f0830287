import FHIR
import FHIRStore

/// `Patient/[id]/$everything`: the patient, every resource in its compartment (by the R4
/// Patient CompartmentDefinition), and the resources those refer to (practitioners,
/// organizations, medications, locations, ...), as one searchset Bundle. A referenced
/// resource that belongs to another patient (another Patient, or one that refers to another
/// Patient) is left out, whoever asks: it is that patient's data, not this one's.
enum EverythingOperation {
    static func run(
        patientId: String, since: Int64?, types: Set<String>?, in transaction: any FHIRTransaction
    ) async throws -> [StoredResource] {
        var resources = try await compartment(ofPatient: patientId, in: transaction)
        var seen = Set(resources.map { ResourceKey(type: $0.type, id: $0.id) })
        let referenced = try await transaction.referenceTargets(of: resources).filter { seen.insert($0).inserted && $0.type != "Patient" }
        resources += try await transaction.resources(referenced).filter { !AccessGuard.refersToAnotherPatient($0, than: patientId) }
        return resources.filter { resource in
            if let since, resource.lastUpdated < since { return false }
            if let types, !types.contains(resource.type) { return false }
            return true
        }
    }

    /// The patient and every resource in its compartment (R4 Patient CompartmentDefinition),
    /// each once; 404/410 when the patient is unknown or deleted.
    static func compartment(ofPatient patientId: String, in transaction: any FHIRTransaction) async throws -> [StoredResource] {
        let patient = try await transaction.read(type: "Patient", id: patientId)
        var seen: Set<ResourceKey> = [ResourceKey(type: "Patient", id: patientId)]
        let members = try await transaction.referrers(to: "Patient", id: patientId)
            .filter { Compartment.patient.contains(type: $0.type, linkedBy: $0.parameter) }
            .map { ResourceKey(type: $0.type, id: $0.id) }
            .filter { seen.insert($0).inserted }
        return [patient] + (try await transaction.resources(members))
    }
}
