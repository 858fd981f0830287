extension ResourceValidator {
    /// The producers every `ResourceValidator` runs unless told otherwise: the R4 core
    /// resource profiles a resource claims in `meta.profile` (or `$validate?profile=` names).
    public static var standardProducers: [any ResourceIssueProducer] { [ProfileValidator.r4] }
}
