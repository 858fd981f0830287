import FHIR
import Foundation
import JWTKit

/// The claims of a SMART access token this server reads.
public struct SMARTAccessClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim?
    public var exp: ExpirationClaim?
    public var nbf: NotBeforeClaim?
    public var iat: IssuedAtClaim?
    public var iss: IssuerClaim?
    public var aud: AudienceClaim?
    public var scope: String?
    public var client_id: String?
    public var azp: String?
    public var patient: String?
    public var fhirUser: String?
    /// The tenant (`X-FHIR-TENANT-ID`) the token is for; absent: the default tenant only.
    public var tenant: String?

    public init(
        subject: String?, expires: Date?, notBefore: Date? = nil, issuedAt: Date? = nil, issuer: String? = nil,
        audience: String? = nil,
        scope: String, clientId: String? = nil, patient: String? = nil, fhirUser: String? = nil, tenant: String? = nil
    ) {
        sub = subject.map(SubjectClaim.init(value:))
        exp = expires.map(ExpirationClaim.init(value:))
        nbf = notBefore.map(NotBeforeClaim.init(value:))
        iat = issuedAt.map(IssuedAtClaim.init(value:))
        iss = issuer.map(IssuerClaim.init(value:))
        aud = audience.map { AudienceClaim(value: [$0]) }
        self.scope = scope
        client_id = clientId
        self.patient = patient
        self.fhirUser = fhirUser
        self.tenant = tenant
    }

    /// A token without `exp` is refused: a bearer token that never expires is not accepted.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        guard let exp else { throw AccessTokenError("The token has no exp claim") }
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }
}

/// What a token must say beyond a valid signature and `exp`/`nbf`: the audience and issuer
/// (when configured), and a lifetime no longer than ``maximumLifetime``, so that a stolen or
/// leaked token is of use for a bounded time only.
public struct AccessTokenPolicy: Sendable {
    /// The `aud` a token must name (SMART: the FHIR base URL); `nil` accepts any.
    public var audience: String?
    /// The `iss` a token must carry; `nil` accepts any.
    public var issuer: String?
    /// The longest a token may be valid: `exp - iat`, and `exp` from now, in seconds.
    public var maximumLifetime: TimeInterval
    /// Clock difference tolerated between this server and the authorization server.
    public var clockSkew: TimeInterval

    /// One hour, a common access token lifetime (SMART servers typically issue 5 to 60 minutes).
    public static let defaultMaximumLifetime: TimeInterval = 3600

    public init(
        audience: String? = nil, issuer: String? = nil, maximumLifetime: TimeInterval = Self.defaultMaximumLifetime,
        clockSkew: TimeInterval = 60
    ) {
        self.audience = audience
        self.issuer = issuer
        self.maximumLifetime = maximumLifetime
        self.clockSkew = clockSkew
    }

    /// What `caduceus serve` logs at start-up when no audience is set (the default without
    /// `--auth-audience` or `--public-url`): a token minted for another resource server that
    /// shares the key is then accepted; `nil` when the audience is checked.
    public var openAudienceWarning: String? {
        guard audience == nil else { return nil }
        return "Access tokens are required, but no audience is configured (--auth-audience or --public-url): "
            + "tokens minted for any resource server that shares this key are accepted"
            + (issuer == nil ? ", and their issuer is not checked (--auth-issuer)" : "")
    }

    /// Refuses claims outside the policy.
    func check(_ claims: SMARTAccessClaims, now: Date = Date()) throws {
        if let audience {
            guard let aud = claims.aud?.value, aud.contains(audience) else {
                throw AccessTokenError("The token's aud does not name this server (\(audience))")
            }
        }
        if let issuer, claims.iss?.value != issuer {
            throw AccessTokenError("The token's iss is not the accepted issuer")
        }
        guard let exp = claims.exp?.value else { throw AccessTokenError("The token has no exp claim") }
        if exp.timeIntervalSince(now) > maximumLifetime + clockSkew {
            throw AccessTokenError(
                "The token is valid for longer than the \(Int(maximumLifetime)) s this server accepts")
        }
        if let iat = claims.iat?.value {
            guard iat.timeIntervalSince(now) <= clockSkew else {
                throw AccessTokenError("The token's iat is in the future")
            }
            guard exp.timeIntervalSince(iat) <= maximumLifetime + clockSkew else {
                throw AccessTokenError(
                    "The token's lifetime (exp - iat) is longer than the \(Int(maximumLifetime)) s this server accepts")
            }
        }
    }
}

/// Why a bearer token was refused (answered 401).
public struct AccessTokenError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Verifies SMART bearer tokens: JWTs signed with HS256 (a shared secret) or RS256 (an RSA
/// public key), each checked only with the key of its own algorithm, so that an RS256 public
/// key is never used as an HMAC secret (algorithm confusion) and `alg: none` is refused.
public struct AccessTokenVerifier: Sendable {
    let hmacKeys: JWTKeyCollection?
    let rsaKeys: JWTKeyCollection?
    /// Audience, issuer and lifetime.
    public var policy: AccessTokenPolicy

    /// At least one of `hs256Secret` and `rs256PublicKeyPEM`.
    public init(
        hs256Secret: [UInt8]? = nil, rs256PublicKeyPEM: String? = nil, policy: AccessTokenPolicy = AccessTokenPolicy()
    ) async throws {
        self.policy = policy
        guard hs256Secret != nil || rs256PublicKeyPEM != nil else {
            throw AccessTokenError("An access token verifier needs an HS256 secret or an RS256 public key")
        }
        if let secret = hs256Secret {
            guard secret.count >= 32 else { throw AccessTokenError("The HS256 secret must be at least 32 bytes") }
            hmacKeys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        } else {
            hmacKeys = nil
        }
        if let pem = rs256PublicKeyPEM {
            let key: Insecure.RSA.PublicKey
            do {
                key = try Insecure.RSA.PublicKey(pem: pem)
            } catch {
                // A certificate is accepted too.
                key = try Insecure.RSA.PublicKey(certificatePEM: pem)
            }
            rsaKeys = await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256)
        } else {
            rsaKeys = nil
        }
    }

    /// Reads the key files `caduceus serve` is given: the secret's bytes (surrounding white
    /// space trimmed) and a PEM public key.
    public static func fromFiles(
        hs256SecretFile: String?, rs256PublicKeyFile: String?, policy: AccessTokenPolicy = AccessTokenPolicy()
    ) async throws -> AccessTokenVerifier {
        let secret = try hs256SecretFile.map { path -> [UInt8] in
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        }
        let pem = try rs256PublicKeyFile.map { try String(contentsOfFile: $0, encoding: .utf8) }
        return try await AccessTokenVerifier(hs256Secret: secret, rs256PublicKeyPEM: pem, policy: policy)
    }

    /// The grant of a valid token; throws ``AccessTokenError`` otherwise.
    public func verify(_ token: String) async throws -> AccessGrant {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64URLDecode(parts[0]),
            let header = try? JSONParser.parse(headerBytes), let alg = header["alg"]?.stringValue
        else { throw AccessTokenError("The bearer token is not a JWT") }
        // RFC 7515 4.1.11: extensions named in `crit` must be understood; this server knows none.
        if header["crit"] != nil {
            throw AccessTokenError(
                "The token's header names critical extensions (crit) this server does not understand")
        }
        let keys: JWTKeyCollection?
        switch alg {
        case "HS256": keys = hmacKeys
        case "RS256": keys = rsaKeys
        default: throw AccessTokenError("The token's algorithm '\(alg)' is not accepted (HS256 or RS256)")
        }
        guard let keys else { throw AccessTokenError("This server is not configured for \(alg) tokens") }
        let claims: SMARTAccessClaims
        do {
            claims = try await keys.verify(token, as: SMARTAccessClaims.self)
        } catch let error as AccessTokenError {
            throw error
        } catch let error as JWTError {
            throw AccessTokenError("The token was refused: \(error.reason ?? "\(error.errorType)")")
        } catch {
            throw AccessTokenError("The token was refused: \(error)")
        }
        try policy.check(claims)
        var grant = AccessGrant(
            subject: claims.sub?.value, clientId: claims.client_id ?? claims.azp, patient: claims.patient,
            fhirUser: claims.fhirUser, scope: claims.scope ?? "")
        grant.tenant = claims.tenant
        return grant
    }

    static func base64URLDecode(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// Signs access tokens the way an authorization server would, for tests, benchmarks and
/// local tools (`caduceus bench auth`); the server itself only verifies.
public struct AccessTokenIssuer: Sendable {
    let keys: JWTKeyCollection

    public static func hs256(secret: [UInt8]) async -> AccessTokenIssuer {
        AccessTokenIssuer(keys: await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256))
    }

    public static func rs256(privateKeyPEM: String) async throws -> AccessTokenIssuer {
        AccessTokenIssuer(
            keys: await JWTKeyCollection().add(
                rsa: try Insecure.RSA.PrivateKey(pem: privateKeyPEM), digestAlgorithm: .sha256))
    }

    /// A signed token; `critical` names header extensions in `crit` (which this server's
    /// verifier refuses: it understands none), for tests of that refusal.
    public func sign(_ claims: SMARTAccessClaims, critical: [String]? = nil) async throws -> String {
        var header = JWTHeader()
        if let critical { header.crit = critical }  // (nil would be written as "crit": null)
        return try await keys.sign(claims, header: header)
    }
}

extension AccessTokenIssuer {
    /// A 2048-bit RSA key pair made by openssl in `directory`, for tests and benchmarks:
    /// (private PEM, public PEM), `nil` without openssl.
    public static func makeRSAKeyPair(in directory: URL) -> (String, String)? {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let privatePath = directory.appendingPathComponent("rsa.pem").path
        let publicPath = directory.appendingPathComponent("rsa.pub.pem").path
        for arguments in [
            ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", privatePath],
            ["pkey", "-in", privatePath, "-pubout", "-out", publicPath],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
        }
        guard let privatePEM = try? String(contentsOfFile: privatePath, encoding: .utf8),
            let publicPEM = try? String(contentsOfFile: publicPath, encoding: .utf8)
        else { return nil }
        return (privatePEM, publicPEM)
    }
}
