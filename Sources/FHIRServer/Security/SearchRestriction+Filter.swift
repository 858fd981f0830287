import FHIR

extension SearchRestriction {
    /// `filter` with the rest of every chain limited as a chained clause's is: each type it
    /// leads to needs the search permission, and under a patient restriction the rest is
    /// ANDed with what the patient may see of that type, so that another patient's data never
    /// decides whether something matches.
    func limited(_ filter: SearchFilter) throws -> SearchFilter {
        switch filter {
        case .and(let terms):
            var limitedTerms: [SearchFilter] = []
            for term in terms { limitedTerms.append(try limited(term)) }
            return .and(limitedTerms)
        case .or(let terms):
            var limitedTerms: [SearchFilter] = []
            for term in terms { limitedTerms.append(try limited(term)) }
            return .or(limitedTerms)
        case .not(let inner):
            return .not(try limited(inner))
        case .test, .member:
            return filter
        case .clause(let clause):
            return .clause(try limited(clause))
        case .chain(let reference, let targets):
            var limitedTargets: [SearchFilterChainTarget] = []
            for target in targets {
                let rest = SearchClause.filter(target.filter)
                limitedTargets.append(
                    SearchFilterChainTarget(
                        type: target.type, filter: .clause(try limitedInner(type: target.type, clause: rest))))
            }
            return .chain(reference: reference, targets: limitedTargets)
        }
    }
}
