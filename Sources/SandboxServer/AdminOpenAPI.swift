/// The admin API's OpenAPI 3.1 document, served at `GET /admin/openapi.json`. Edited as JSON in
/// `Resources/admin-openapi.json` and embedded at build time (`.embedInCode`), so the binary needs no resource folder;
/// a test checks that it describes exactly the routes the admin router registers.
enum AdminOpenAPI {
    static var document: [UInt8] { PackageResources.admin_openapi_json }
}
