import DMP
import Hummingbird

/// `/admin/dmp/records`: the DMPs, their status and the structures authorised on each.
enum AdminDMP {
    static func add(to admin: RouterGroup<AdminRequestContext>, records: DMPRecords) {
        admin.get("dmp/records") { _, _ in SandboxJSON.response(try records.records()) }
    }
}
