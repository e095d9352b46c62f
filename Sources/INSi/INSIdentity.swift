import Foundation

/// An identity of the sandbox's INSi test base (the role the CNAM's RFI test base plays): the matricule INS
/// (NIR or NIA) with its key, the OID kind, the five reference traits ("traits stricts") and earlier INS.
/// Keys are the INSi vocabulary (`nomNaissance`, `listePrenom`…) so a seed file reads like the XSD.
public struct INSIdentity: Codable, Sendable, Hashable {
    /// 13 characters: sex, year, month, département (`2A`/`2B` for Corsica), commune, order.
    public var matricule: String
    /// 2 digits ("clé").
    public var key: String
    /// NIR (`1.2.250.1.213.1.4.8` by default) or NIA (`.9`): which OID the answer carries.
    public var kind: Kind
    public var birthName: String
    /// Every first name, space separated ("liste des prénoms"), the first one first.
    public var firstNames: String
    public var sex: String
    public var birthDate: String
    /// INSEE COG code of the birth place (`99xxx` abroad).
    public var birthPlace: String?
    /// Earlier INS of the same person (INSHISTO), e.g. after a NIR change.
    public var history: [HistoricINS]
    public var note: String?

    public enum Kind: String, Codable, Sendable, Hashable {
        case nir = "NIR"
        case nia = "NIA"
    }

    enum CodingKeys: String, CodingKey {
        case matricule
        case key = "cle"
        case kind = "type"
        case birthName = "nomNaissance"
        case firstNames = "listePrenom"
        case sex = "sexe"
        case birthDate = "dateNaissance"
        case birthPlace = "lieuNaissance"
        case history = "insHisto"
        case note
    }

    public init(
        matricule: String,
        key: String,
        kind: Kind = .nir,
        birthName: String,
        firstNames: String,
        sex: String,
        birthDate: String,
        birthPlace: String? = nil,
        history: [HistoricINS] = [],
        note: String? = nil
    ) {
        self.matricule = matricule
        self.key = key
        self.kind = kind
        self.birthName = birthName
        self.firstNames = firstNames
        self.sex = sex
        self.birthDate = birthDate
        self.birthPlace = birthPlace
        self.history = history
        self.note = note
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        matricule = try container.decode(String.self, forKey: .matricule)
        key = try container.decode(String.self, forKey: .key)
        kind = try container.decodeIfPresent(Kind.self, forKey: .kind) ?? .nir
        birthName = try container.decode(String.self, forKey: .birthName)
        firstNames = try container.decode(String.self, forKey: .firstNames)
        sex = try container.decode(String.self, forKey: .sex)
        birthDate = try container.decode(String.self, forKey: .birthDate)
        birthPlace = try container.decodeIfPresent(String.self, forKey: .birthPlace)
        history = try container.decodeIfPresent([HistoricINS].self, forKey: .history) ?? []
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    /// The identity's own traits, checked like a request's, and its keys by the NIR rule unless `allowBadKey`
    /// (the CNDA deliberately ships identities whose key does not verify).
    public func validate(allowBadKey: Bool) throws(INSiValidationError) {
        try INSTraits.checkMatricule(matricule, field: "matricule")
        guard key.count == 2, key.allSatisfy(\.isASCIIDigit) else {
            throw INSiValidationError(field: "cle", "the key must be 2 digits, not '\(key)'")
        }
        try INSTraits(
            birthName: birthName,
            firstName: firstNames,
            sex: sex,
            birthDate: birthDate,
            birthPlace: birthPlace
        ).validate()
        for (index, previous) in history.enumerated() {
            try INSTraits.checkMatricule(previous.matricule, field: "insHisto[\(index)].matricule")
        }
        guard !allowBadKey else { return }
        for (field, matricule, key) in [("cle", matricule, key)]
            + history.enumerated().map({ ("insHisto[\($0)].cle", $1.matricule, $1.key) })
        {
            let expected = NIRKey.compute(matricule)
            guard expected == key else {
                throw INSiValidationError(
                    field: field,
                    "key \(key) does not verify for \(matricule) (97 - NIR mod 97 = \(expected ?? "?")); pass allowBadKey to keep it, as the CNDA does on purpose"
                )
            }
        }
    }

    /// The first first name ("premier prénom").
    public var firstFirstName: String { String(firstNames.split(separator: " ").first ?? "") }
}

/// An earlier INS (INSHISTO).
public struct HistoricINS: Codable, Sendable, Hashable {
    public var matricule: String
    public var key: String
    public var start: String?
    public var end: String?

    enum CodingKeys: String, CodingKey {
        case matricule
        case key = "cle"
        case start = "dateDeb"
        case end = "dateFin"
    }

    public init(matricule: String, key: String, start: String? = nil, end: String? = nil) {
        self.matricule = matricule
        self.key = key
        self.start = start
        self.end = end
    }
}

/// A simulated Vitale card: the insured person ("assuré") and the beneficiaries it carries, each with their
/// birth rank ("rang de naissance", which separates twins).
public struct VitaleCard: Codable, Sendable, Hashable {
    public var id: String
    /// Matricule (13 characters) of the insured person.
    public var insured: String
    public var beneficiaries: [Beneficiary]
    public var note: String?

    public struct Beneficiary: Codable, Sendable, Hashable {
        /// Matricule of an identity of the test base.
        public var matricule: String
        public var rank: Int

        enum CodingKeys: String, CodingKey {
            case matricule
            case rank = "rang"
        }

        public init(matricule: String, rank: Int) {
            self.matricule = matricule
            self.rank = rank
        }
    }

    enum CodingKeys: String, CodingKey {
        case id
        case insured = "assure"
        case beneficiaries = "beneficiaires"
        case note
    }

    public init(id: String, insured: String, beneficiaries: [Beneficiary], note: String? = nil) {
        self.id = id
        self.insured = insured
        self.beneficiaries = beneficiaries
        self.note = note
    }
}

/// The NIR key: 97 − (NIR mod 97), Corsican départements `2A`/`2B` read as 19/18.
public enum NIRKey {
    public static func compute(_ matricule: String) -> String? {
        var digits = matricule.uppercased()
        guard digits.count == 13 else { return nil }
        let department = digits.index(digits.startIndex, offsetBy: 5)..<digits.index(digits.startIndex, offsetBy: 7)
        switch digits[department] {
        case "2A": digits.replaceSubrange(department, with: "19")
        case "2B": digits.replaceSubrange(department, with: "18")
        default: break
        }
        guard let value = Int64(digits) else { return nil }
        return String(format: "%02d", 97 - Int(value % 97))
    }
}

/// A trait or field that breaks the Référentiel INS rules, with the field named.
public struct INSiValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// The traits of a search, as sent (`RECSANSVITALE`) and as the Référentiel INS wants them: upper-case ASCII
/// letters with `-`, `'` and single spaces between words, sex M or F, a real calendar date, a 5-character COG code.
public struct INSTraits: Sendable, Hashable {
    public var birthName: String
    public var firstName: String
    public var sex: String
    public var birthDate: String
    public var birthPlace: String?

    public init(birthName: String, firstName: String, sex: String, birthDate: String, birthPlace: String?) {
        self.birthName = birthName
        self.firstName = firstName
        self.sex = sex
        self.birthDate = birthDate
        self.birthPlace = birthPlace
    }

    public func validate() throws(INSiValidationError) {
        try Self.checkName(birthName, field: "NomNaissance")
        try Self.checkName(firstName, field: "Prenom")
        guard sex == "M" || sex == "F" else {
            throw INSiValidationError(field: "Sexe", "'\(sex)' is not M or F (the INS knows no other value)")
        }
        try Self.checkDate(birthDate, field: "DateNaissance")
        if let birthPlace {
            guard birthPlace.count == 5, birthPlace.allSatisfy({ $0.isASCIIDigit || $0 == "A" || $0 == "B" }),
                birthPlace.dropFirst(2).allSatisfy(\.isASCIIDigit)
            else {
                throw INSiValidationError(
                    field: "LieuNaissance",
                    "'\(birthPlace)' is not a 5-character INSEE COG code (e.g. 63220, 2A020, 99100)"
                )
            }
        }
    }

    /// `^[A-Z]+(?:(?:-{1,2}|[' ])[A-Z]+)*$`: the rule of INSi clients that passed the CNDA.
    static func checkName(_ value: String, field: String) throws(INSiValidationError) {
        guard !value.isEmpty else { throw INSiValidationError(field: field, "missing") }
        var previousSeparator = true
        var dashes = 0
        for character in value {
            if character.isASCII, character.isUppercase {
                previousSeparator = false
                dashes = 0
            } else if character == "-" {
                dashes += 1
                guard !previousSeparator || dashes == 2 else {
                    throw INSiValidationError(field: field, "'\(value)': a separator must sit between two words")
                }
                guard dashes <= 2 else {
                    throw INSiValidationError(field: field, "'\(value)': at most two dashes in a row")
                }
                previousSeparator = true
            } else if character == "'" || character == " " {
                guard !previousSeparator else {
                    throw INSiValidationError(field: field, "'\(value)': a separator must sit between two words")
                }
                previousSeparator = true
            } else {
                throw INSiValidationError(
                    field: field,
                    "'\(value)' contains '\(character)': only upper-case A–Z, '-', ''' and single spaces (no accent, no lower case)"
                )
            }
        }
        guard !previousSeparator else { throw INSiValidationError(field: field, "'\(value)' ends with a separator") }
    }

    static func checkDate(_ value: String, field: String) throws(INSiValidationError) {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard value.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else {
            throw INSiValidationError(field: field, "'\(value)' is not a date YYYY-MM-DD")
        }
        var components = DateComponents()
        components.year = year
        components.month = month
        components.day = day
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard (1...12).contains(month),
            calendar.date(from: components).map({ calendar.component(.day, from: $0) == day }) == true
        else {
            throw INSiValidationError(field: field, "'\(value)' is not a calendar date")
        }
    }

    static func checkMatricule(_ value: String, field: String) throws(INSiValidationError) {
        let characters = Array(value)
        guard characters.count == 13,
            characters[0..<5].allSatisfy(\.isASCIIDigit), characters[7..<13].allSatisfy(\.isASCIIDigit),
            (characters[5].isASCIIDigit && characters[6].isASCIIDigit)
                || (characters[5] == "2" && (characters[6] == "A" || characters[6] == "B"))
        else {
            throw INSiValidationError(
                field: field,
                "'\(value)' is not a 13-character matricule (sex, year, month, département incl. 2A/2B, commune, order)"
            )
        }
    }

    /// Whether an identity answers these traits: exact on the normalised traits, the first name being any one of
    /// the identity's first names or all of them joined by spaces (the CNDA client loop sends each in turn, then
    /// the list); the birth place only when sent.
    public func matches(_ identity: INSIdentity) -> Bool {
        guard identity.birthName == birthName, identity.sex == sex, identity.birthDate == birthDate else {
            return false
        }
        if let birthPlace, let known = identity.birthPlace, known != birthPlace { return false }
        let names = identity.firstNames.split(separator: " ").map(String.init)
        return firstName == identity.firstNames || names.contains(firstName)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
