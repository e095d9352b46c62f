import Access
import Hummingbird

/// Routes of the mutual-TLS listener. Service modules add theirs here as they land; until then a whitelisted
/// caller reaching a service path gets a 404 in that service's own error form.
enum SandboxRoutes {
    static func add(to router: Router<SandboxRequestContext>, sandbox: Sandbox) {
        let environment = sandbox.configuration.environment
        let whitelist = sandbox.whitelist
        router.get(RouterPath(WhoAmI.path)) { _, context in
            WhoAmI.response(identity: context.identity, environment: environment, whitelist: whitelist)
        }
        for service in SandboxService.allCases {
            for prefix in service.pathPrefixes {
                for path in [prefix, prefix + "/**"] {
                    router.on(RouterPath(path), method: .get) { request, _ in notImplemented(service, request) }
                    router.on(RouterPath(path), method: .post) { request, _ in notImplemented(service, request) }
                    router.on(RouterPath(path), method: .put) { request, _ in notImplemented(service, request) }
                    router.on(RouterPath(path), method: .patch) { request, _ in notImplemented(service, request) }
                    router.on(RouterPath(path), method: .delete) { request, _ in notImplemented(service, request) }
                }
            }
        }
    }

    static func notImplemented(_ service: SandboxService, _ request: Request) -> Response {
        ServiceErrors.response(
            service: service, status: .notFound,
            message: "No \(service.rawValue) operation answers \(request.method.rawValue) \(request.uri.path) in this sandbox version.",
            subcode: "NotFound")
    }
}
