import NIOSSL

/// The mutual-TLS listeners' protocol versions and cipher suites, after Mozilla's server-side TLS recommendations
/// (https://wiki.mozilla.org/Security/Server_Side_TLS, version 5.7): `intermediate` by default, `modern` for TLS 1.3
/// only, `legacy` for a client that knows neither ECDHE nor AEAD (what the sandbox accepted before).
public enum TLSProfile: String, Sendable, CaseIterable {
    /// TLS 1.3 only.
    case modern
    /// TLS 1.3, and TLS 1.2 with ECDHE key exchange and AEAD ciphers only (no static RSA, no CBC).
    case intermediate
    /// TLS 1.2 and 1.3 with BoringSSL's default suites, static-RSA and CBC included.
    case legacy

    /// Mozilla intermediate's TLS 1.2 suites BoringSSL offers (it has no finite-field DHE).
    static let intermediateSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    func apply(to tls: inout TLSConfiguration) {
        switch self {
        case .modern:
            tls.minimumTLSVersion = .tlsv13
        case .intermediate:
            tls.minimumTLSVersion = .tlsv12
            tls.cipherSuiteValues = Self.intermediateSuites
        case .legacy:
            tls.minimumTLSVersion = .tlsv12
        }
    }
}
