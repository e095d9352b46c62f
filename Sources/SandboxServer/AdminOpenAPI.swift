/// OpenAPI 3.1 description of the admin API, served at `GET /admin/openapi.json`.
/// Kept next to `AdminAPI` and checked by a test that every route is described.
enum AdminOpenAPI {
    static let document = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "esante-sandbox admin API",
    "version": "1.0.0",
    "description": "Loopback HTTP API to inspect and drive the sandbox: health, whitelists, journal, reset. With --admin-token every call needs 'Authorization: Bearer <token>'."
  },
  "components": {
    "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "INSiIdentity": {
        "type": "object", "required": ["matricule", "cle", "nomNaissance", "listePrenom", "sexe", "dateNaissance"],
        "properties": {
          "matricule": {"type": "string", "description": "13 characters (NIR or NIA)"}, "cle": {"type": "string"},
          "type": {"type": "string", "enum": ["NIR", "NIA"], "default": "NIR"}, "nomNaissance": {"type": "string"},
          "listePrenom": {"type": "string"}, "sexe": {"type": "string", "enum": ["M", "F"]},
          "dateNaissance": {"type": "string", "format": "date"}, "lieuNaissance": {"type": "string"}, "note": {"type": "string"},
          "insHisto": {"type": "array", "items": {"type": "object", "required": ["matricule", "cle"], "properties": {
            "matricule": {"type": "string"}, "cle": {"type": "string"}, "dateDeb": {"type": "string"}, "dateFin": {"type": "string"}}}}
        }
      },
      "INSiCard": {
        "type": "object", "required": ["id", "assure", "beneficiaires"],
        "properties": {"id": {"type": "string"}, "assure": {"type": "string"}, "note": {"type": "string"},
          "beneficiaires": {"type": "array", "items": {"type": "object", "required": ["matricule", "rang"], "properties": {
            "matricule": {"type": "string"}, "rang": {"type": "integer"}}}}}
      },
      "INSiLPS": {"type": "object", "required": ["idam"], "properties": {"idam": {"type": "string"}, "label": {"type": "string"}}},
      "OnboardingSubmission": {
        "type": "object", "required": ["kind", "direction", "service", "contact"],
        "properties": {
          "kind": {"type": "string", "enum": ["eai-regional", "saas", "proprietary"]},
          "direction": {"type": "string", "enum": ["feed", "consume"]},
          "service": {"type": "string", "enum": ["ror-fhir", "ror-csd", "insi", "dmp", "mes"]},
          "environment": {"type": "string", "description": "default: the first environment served"},
          "contact": {"type": "string"},
          "subjectDN": {"type": "string", "description": "EAI/SaaS on DN services (or certificatePEM)"},
          "certificatePEM": {"type": "string", "description": "EAI/SaaS: the certificate, or for ror-csd the certificate or PUBLIC KEY (required)"},
          "establishments": {"type": "array", "items": {"type": "string"}, "description": "EAI/SaaS: FINESS list (required to feed)"},
          "establishmentCertificates": {"type": "array", "description": "proprietary: one certificate per establishment",
            "items": {"type": "object", "required": ["finess", "certificatePEM"], "properties": {"finess": {"type": "string"}, "certificatePEM": {"type": "string"}}}}
        }
      },
      "OnboardingAction": {
        "type": "object", "description": "Body of the action endpoints (optional for tests-done, whitelist, revoke); each reads its fields",
        "properties": {
          "actor": {"type": "string", "description": "recorded in the history (default committee, publisher or ans)"},
          "reason": {"type": "string", "description": "required by reject"},
          "accessProfile": {"type": "integer", "minimum": 0, "maximum": 5, "description": "validate: required for ror-fhir consumers"},
          "clientId": {"type": "string"}, "clientSecret": {"type": "string"},
          "rorHeaders": {"type": "object", "additionalProperties": {"type": "string"}},
          "establishments": {"type": "array", "items": {"type": "string"}, "description": "PUT establishments"},
          "finess": {"type": "string"}, "certificatePEM": {"type": "string", "description": "POST certificates"}
        }
      },
      "OnboardingRequest": {
        "type": "object",
        "properties": {
          "id": {"type": "integer"}, "kind": {"type": "string"}, "direction": {"type": "string"}, "service": {"type": "string"},
          "environment": {"type": "string"}, "contact": {"type": "string"}, "subjectDN": {"type": ["string", "null"]},
          "establishments": {"type": "array", "items": {"type": "string"}},
          "establishmentCertificates": {"type": "array", "items": {"type": "object"}},
          "state": {"type": "string", "enum": ["submitted", "validated", "rejected", "tests-done", "whitelisted", "revoked"]},
          "committee": {"type": ["object", "null"]}, "rejectionReason": {"type": ["string", "null"]},
          "whitelistDueAt": {"type": ["string", "null"], "format": "date-time", "description": "sandbox clock"},
          "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}
        }
      },
      "Clock": {"type": "object", "properties": {"now": {"type": "string", "format": "date-time"}, "speed": {"type": "number"}, "label": {"type": "string"}}},
      "FaultRule": {
        "type": "object", "description": "Give service or pathPrefix, and at least one effect; effects combine (latency, then maintenance, drop or error)",
        "properties": {
          "id": {"type": "integer", "readOnly": true},
          "service": {"type": "string", "enum": ["ror-fhir", "ror-csd", "insi", "dmp", "mes"]},
          "pathPrefix": {"type": "string", "description": "e.g. /ws-synchro-dispo-lits-fhir"},
          "latencyMs": {"type": "integer", "minimum": 0, "maximum": 60000}, "latencyMaxMs": {"type": "integer", "description": "random latency in latencyMs..latencyMaxMs"},
          "errorRate": {"type": "number", "minimum": 0, "maximum": 1, "description": "share answered 503 with Retry-After and a body in the service's form"},
          "retryAfter": {"type": "integer", "default": 30},
          "maintenanceFrom": {"type": "string", "format": "date-time", "description": "sandbox clock; default now"},
          "maintenanceUntil": {"type": "string", "format": "date-time", "description": "503 for every request of the window"},
          "dropRate": {"type": "number", "minimum": 0, "maximum": 1, "description": "share of connections closed without an answer"},
          "label": {"type": "string"}
        }
      },
      "WhitelistRequest": {
        "type": "object",
        "required": ["service"],
        "properties": {
          "service": {"type": "string", "enum": ["ror-fhir", "ror-csd", "insi", "dmp", "mes"]},
          "environment": {"type": "string", "default": "bac-a-sable"},
          "subjectDN": {"type": "string", "description": "RFC 4514, OpenSSL one-line or slash form; required for DN services unless certificatePEM is given"},
          "publicKeySHA256": {"type": "string", "description": "SHA-256 of the DER SubjectPublicKeyInfo, hex or base64 (ror-csd)"},
          "certificatePEM": {"type": "string", "description": "PEM certificate (or PUBLIC KEY) the DN or key is read from"},
          "role": {"type": "string", "enum": ["consume", "feed"], "default": "consume"},
          "establishments": {"type": "array", "items": {"type": "string"}, "description": "FINESS identifiers the entry may write for"},
          "label": {"type": "string"}
        }
      },
      "WhitelistEntry": {
        "type": "object",
        "required": ["id", "environment", "service", "role", "establishments", "origin", "createdAt", "updatedAt"],
        "properties": {
          "id": {"type": "integer"},
          "environment": {"type": "string"},
          "service": {"type": "string"},
          "subjectDN": {"type": ["string", "null"]},
          "publicKeySHA256": {"type": ["string", "null"]},
          "role": {"type": "string"},
          "establishments": {"type": "array", "items": {"type": "string"}},
          "label": {"type": ["string", "null"]},
          "origin": {"type": "string", "enum": ["seed", "admin", "cli"]},
          "createdAt": {"type": "string", "format": "date-time"},
          "updatedAt": {"type": "string", "format": "date-time"}
        }
      },
      "JournalEntry": {
        "type": "object",
        "required": ["id", "time", "environment", "method", "path", "status", "decision", "durationMs"],
        "properties": {
          "id": {"type": "integer"},
          "time": {"type": "string", "format": "date-time"},
          "environment": {"type": "string"},
          "service": {"type": ["string", "null"]},
          "method": {"type": "string", "description": "HTTP method, or TLS for a refused handshake"},
          "path": {"type": "string"},
          "query": {"type": ["string", "null"]},
          "status": {"type": "integer", "description": "0 for a refused handshake"},
          "decision": {"type": "string", "enum": ["accepted", "refused"]},
          "reason": {"type": ["string", "null"]},
          "subjectDN": {"type": ["string", "null"]},
          "issuerDN": {"type": ["string", "null"]},
          "serialNumber": {"type": ["string", "null"]},
          "spkiSHA256": {"type": ["string", "null"]},
          "durationMs": {"type": "number"},
          "remoteAddress": {"type": ["string", "null"]},
          "requestHeaders": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
          "requestBody": {"type": ["string", "null"]},
          "requestBodyEncoding": {"type": ["string", "null"], "enum": ["base64", null]},
          "requestBodyTruncated": {"type": "boolean"},
          "responseHeaders": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
          "responseBody": {"type": ["string", "null"]},
          "responseBodyEncoding": {"type": ["string", "null"], "enum": ["base64", null]},
          "responseBodyTruncated": {"type": "boolean"}
        }
      }
    }
  },
  "security": [{}, {"adminToken": []}],
  "paths": {
    "/admin/health": {
      "get": {
        "summary": "Liveness and listener URLs",
        "responses": {"200": {"description": "Running", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    },
    "/admin/whitelist": {
      "get": {
        "summary": "All whitelist entries of every environment and service",
        "responses": {"200": {"description": "Entries", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/WhitelistEntry"}}}}}}
      },
      "post": {
        "summary": "Add (or update) a whitelist entry",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WhitelistRequest"}}}},
        "responses": {
          "201": {"description": "Stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WhitelistEntry"}}}},
          "400": {"description": "Invalid request (malformed DN, unknown service, missing credential…)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/whitelist/{id}": {
      "delete": {
        "summary": "Remove a whitelist entry",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "responses": {
          "204": {"description": "Removed"},
          "400": {"description": "Not an id", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "404": {"description": "No such entry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/journal": {
      "get": {
        "summary": "Journal rows, newest first (oldest first with 'after')",
        "parameters": [
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}},
          {"name": "service", "in": "query", "schema": {"type": "string"}},
          {"name": "decision", "in": "query", "schema": {"type": "string", "enum": ["accepted", "refused"]}},
          {"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "only rows with a greater id, oldest first"}
        ],
        "responses": {
          "200": {"description": "Rows", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/JournalEntry"}}}}},
          "400": {"description": "Bad filter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/reset": {
      "post": {
        "summary": "Service data back to the seeds and journal emptied; scope=all also resets the whitelist to the seeds and empties the CRL",
        "parameters": [{"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["data", "all"], "default": "data"}}],
        "responses": {
          "200": {"description": "Done", "content": {"application/json": {"schema": {"type": "object"}}}},
          "400": {"description": "Unknown scope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/insi/identities": {
      "get": {"summary": "INSi test identities", "responses": {"200": {"description": "List", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/INSiIdentity"}}}}}}},
      "post": {
        "summary": "Add or replace (INSi test identities)",
        "parameters": [{"name": "allowBadKey", "in": "query", "schema": {"type": "boolean", "default": false}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiIdentity"}}}},
        "responses": {
          "201": {"description": "Stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiIdentity"}}}},
          "400": {"description": "Invalid (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/insi/identities/{id}": {
      "delete": {
        "summary": "Remove (identities by matricule, cards by id, lps by number)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Removed"}, "404": {"description": "Absent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
      }
    },
    "/admin/insi/cards": {
      "get": {"summary": "Simulated Vitale cards", "responses": {"200": {"description": "List", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/INSiCard"}}}}}}},
      "post": {
        "summary": "Add or replace (Simulated Vitale cards)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiCard"}}}},
        "responses": {
          "201": {"description": "Stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiCard"}}}},
          "400": {"description": "Invalid (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/insi/cards/{id}": {
      "delete": {
        "summary": "Remove (identities by matricule, cards by id, lps by number)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Removed"}, "404": {"description": "Absent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
      }
    },
    "/admin/insi/lps": {
      "get": {"summary": "LPS authorisation numbers (ContexteLPS/LPS/IDAM)", "responses": {"200": {"description": "List", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/INSiLPS"}}}}}}},
      "post": {
        "summary": "Add or replace (LPS authorisation numbers (ContexteLPS/LPS/IDAM))",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiLPS"}}}},
        "responses": {
          "201": {"description": "Stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/INSiLPS"}}}},
          "400": {"description": "Invalid (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/insi/lps/{id}": {
      "delete": {
        "summary": "Remove (identities by matricule, cards by id, lps by number)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Removed"}, "404": {"description": "Absent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
      }
    },
    "/admin/onboarding": {
      "get": {"summary": "Integration requests (oldest first)", "parameters": [{"name": "state", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "List", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/OnboardingRequest"}}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "post": {"summary": "Submit an integration request", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingSubmission"}}}},
        "responses": {"201": {"description": "Submitted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}": {
      "get": {"summary": "A request, its history (who, when, why) and the sandbox clock", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "Request", "content": {"application/json": {"schema": {"type": "object", "properties": {"request": {"$ref": "#/components/schemas/OnboardingRequest"}, "events": {"type": "array", "items": {"type": "object"}}, "clock": {"$ref": "#/components/schemas/Clock"}}}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/validate": {
      "post": {"summary": "Committee: accept, assign the access profile (and ROR client)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/reject": {
      "post": {"summary": "Committee: reject (reason required)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/tests-done": {
      "post": {"summary": "Publisher: tests done; the ANS delay starts", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/whitelist": {
      "post": {"summary": "ANS: whitelist once the delay has passed (the server also does it by itself)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/revoke": {
      "post": {"summary": "ANS: revoke; the request's whitelist entries are removed", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/certificates": {
      "post": {"summary": "ANS: add an establishment certificate (proprietary)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/establishments": {
      "put": {"summary": "ANS: replace the FINESS list of an EAI/SaaS request (and of its whitelist entries)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingAction"}}}},
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/onboarding/{id}/certificates/{finess}": {
      "delete": {"summary": "ANS: remove an establishment certificate (proprietary)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}, {"name": "finess", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The request after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OnboardingRequest"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "No such request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "Not allowed in the request's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/clock": {
      "get": {"summary": "The sandbox clock", "responses": {"200": {"description": "Clock", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Clock"}}}}}},
      "post": {"summary": "Change the clock speed (sandbox time continues from where it is)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["speed"], "properties": {"speed": {"type": "number", "minimum": 1, "maximum": 100000}}}}}},
        "responses": {"200": {"description": "Clock", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Clock"}}}}, "400": {"description": "Invalid input (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/faults": {
      "get": {"summary": "Faults in force", "responses": {"200": {"description": "List", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/FaultRule"}}}}}}},
      "post": {"summary": "Inject a fault", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FaultRule"}}}},
        "responses": {"201": {"description": "In force", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FaultRule"}}}}, "400": {"description": "Invalid (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "delete": {"summary": "Clear every fault (reset does too)", "responses": {"204": {"description": "Cleared"}}}
    },
    "/admin/faults/{id}": {
      "delete": {"summary": "Remove a fault", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "responses": {"204": {"description": "Removed"}, "404": {"description": "Absent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/certificates": {
      "post": {"summary": "Certificate workshop: mint a client certificate (or a negative one) in an environment's PKI; nothing is whitelisted",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["subjectDN"], "properties": {
          "subjectDN": {"type": "string"}, "environment": {"type": "string"},
          "negative": {"type": "string", "enum": ["expired", "not-yet-valid", "self-signed", "untrusted-ca", "server-eku", "revoked", "mismatched-key"]},
          "keyType": {"type": "string", "enum": ["rsa", "p256"]}}}}}},
        "responses": {"201": {"description": "PEMs and what the certificate says", "content": {"application/json": {"schema": {"type": "object", "properties": {
          "subjectDN": {"type": "string"}, "issuerDN": {"type": "string"}, "serialNumber": {"type": "string"}, "spkiSHA256": {"type": "string"},
          "notValidBefore": {"type": "string", "format": "date-time"}, "notValidAfter": {"type": "string", "format": "date-time"},
          "certificatePEM": {"type": "string"}, "privateKeyPEM": {"type": "string"}, "bundlePEM": {"type": "string"}}}}}},
          "400": {"description": "Invalid order (the field is named)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    },
    "/admin/openapi.json": {
      "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}
    }
  }
}
"""#
}
