import Hummingbird

extension HTTPResponse.Status {
    /// 507 (RFC 4918 §11.5): the server cannot store what the request needs it to — here, a full disk.
    public static var insufficientStorage: Self { .init(code: 507, reasonPhrase: "Insufficient Storage") }
}
