import Access
import DMP
import Hummingbird
import INSi
import MonEspaceSante
import RORCSD
import RORFHIR

/// Routes of the mutual-TLS listener. Service modules add theirs here; a path no route answers gets a 404 in the
/// owning service's error form (see `AccessResponder`).
enum SandboxRoutes {
    static func add(
        to router: Router<SandboxRequestContext>,
        whitelist: Whitelist,
        ror: RORFHIRService,
        csd: RORCSDService,
        insi: INSiService,
        mes: MESService,
        dmp: DMPService
    ) {
        router.get(RouterPath(WhoAmI.path)) { _, context in
            WhoAmI.response(identity: context.identity, environment: context.environment, whitelist: whitelist)
        }
        ror.addRoutes(to: router)
        csd.addRoutes(to: router)
        insi.addRoutes(to: router)
        mes.addRoutes(to: router)
        dmp.addRoutes(to: router)
    }

    /// Requests answered on the connection's event loop when all they need is in memory (``ImmediateAnswers``);
    /// each also has its route above, which answers whatever the immediate answer leaves.
    static func immediateAnswers(ror: RORFHIRService) -> [ImmediateAnswer] {
        return [
            ImmediateAnswer(pathPrefix: RORFHIRService.basePath + "/") { request, _, context in
                ror.readNow(request, identity: context.identity, environment: context.environment)
                    .map { ImmediateReply(head: $0.0, body: $0.1, storedVersion: nil) }
            },
            // A capacity feed's body is a few kilobytes; a larger one takes the route (and its `--max-body`).
            ImmediateAnswer(method: .PATCH, pathPrefix: RORCapacityFeed.basePath + "/Location?", maximumBody: 256 << 10)
            { request, body, context in
                ror.feed.patchNow(request, body: body, identity: context.identity, environment: context.environment)
                    .map { ImmediateReply(head: $0.0, body: $0.1, storedVersion: $0.2) }
            },
        ]
    }
}
