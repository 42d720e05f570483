"""Keyword-local secret detectors (the rules themselves are data: `engine.py`, `rules/`).

Three detectors are keyword-*local*: `password`, `generic_secret` (a high-entropy
value assigned to a secret-like name) and `bearer_token` run one anchored match right after
each keyword occurrence, so a prompt that says "key" ten times costs ten tiny matches, not
ten scans. `url_password` does the same after each `://`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import TypeGuard

from emancipate.guard.engine import (
    ANTI_FORGERY_FIELDS,
    ANTI_FORGERY_WORDS,
    KEYBOARD_WALK,
    PUBLIC_BASE64,
    TEMPLATE_WORDS,
    access_code,
    assignment,
    b64_text,
    below_entropy,
    case_random,
    char_classes,
    default_login,
    digit_count,
    dotted_name,
    entropy,
    entropy_floor,
    long_hex,
    name_like,
    passphrase,
    placeholder_token,
    public_jwt,
    random_one_case,
    random_token,
    sample_basic,
    sample_credentials,
    template_ref,
    wordish,
)
from emancipate.guard.normalize import base64_only, decoded_text, viewed_words
from emancipate.guard.text import fold

Hit = tuple[int, int, str]  # start, end, detector


# --- keyword-local detectors -------------------------------------------------------------

# Password words (matched through the folded view: `contraseña` is `contrasena`, `Пароль`
# is `пapoль`; other languages written as users write them).
_PASSWORD_WORDS = (
    "password", "passwd", "pwd", "passphrase", "passcode", "mot de passe", "mot-de-passe",
    "motdepasse", "mdp", "code d'acces", "code confidentiel", "contrasena", "contrasenia",
    "contracena",  # (`contraceña`, as it is misspelt)
    "la contra",  # Mexican Spanish's short word for a login's password (`la contra es …`)
    "hasłem", "hasła",  # Polish's instrumental and genitive (`z hasłem …`)
    "passwort", "passwuat",  # (Plautdietsch: `daut Passwuat es …`)
    "kennwort", "senha", "wachtwoord", "palavra-passe",
    "paswoord", "wachtzin",  # (Flemish; Dutch's passphrase)
    "paswort",  # (Sranan Tongo)
    "passwod",  # (Belizean Kriol: `weh di wifi passwod?`)
    "پټنوم", "پاسورډ",  # (Pashto)
    "ramze",  # (Persian written in Latin letters: `ramze wifi …`, `ramze jadid: …`)
    "awal uffir", "awal n uffir", "ⴰⵡⴰⵍ ⵓⴼⴼⵉⵔ",  # Kabyle, Tamazight: the hidden word
    "pled-clav", "pled clav",  # Romansh
    "passwird",  # Scots
    "pas rochtana",  # Irish: an access pass (Microsoft's Temporary Access Pass)
    "wachtwurd",  # Frisian
    "ñe'ẽñemi", "ñe’ẽñemi", "ñeẽñemi",  # Guaraní: the secret word
    "پاسورڈ",  # Urdu and Punjabi in Shahmukhi
    "پاسورڊ",  # Sindhi
    "серсүз", "серһүҙ", "sersüz",  # Tatar, Bashkir, Tatar in Latin letters: the secret word
    "비번",  # Korean's short word (`비번 0463이에요`)
    "lo lus zais",  # Hmong: the hidden word
    "ޕާސްވޯޑް",  # Dhivehi
    "sisma", "ha-sisma", "hasisma",  # Hebrew in Latin letters (`ve-ha-sisma hi …`)
    "संकेतशब्द",  # Marathi, Hindi: the password
    "tenimiafina", "teny miafina",  # Malagasy: the hidden word
    "pasahitz", "pasahitza",  # Basque
    "pasiwadi", "pasiwedi",  # Luganda
    "passwordnga", "password-nga",  # Inuktitut: its password (`wifi passwordnga …`)
    "ᐃᓯᕐᓂᕐᒧᑦ ᐅᖃᐅᓯᖅ", "ᐃᓯᕐᓂᕐᒧᑦ ᐅᖃᐅᓯᖓ", "ᐃᓯᕐᓂᕐᒧᑦ ᐅᖃᐅᓯᑎᑦ",  # Inuktitut: the word to enter
    "password-um",  # Azerbaijani's possessive on the English word (`password-um expired …`)
    "açar sözi", "açar sözüni", "kupia soz", "kupia söz", "qupia söz", "qupiya söz",  # Turkmen,
    # Kazakh in Latin letters: the key word, the secret word
    "šifra za pristup", "sifra za pristup",  # Serbian in Latin letters: the access code
    "sa crae",  # Sardinian: the key (`s'utente est …, sa crae est …`)
    "a chjave", "chjave",  # Corsican: the key (`a reta wifi hè "…", a chjave hè …`)
    "پاسۆرد", "پاسۆردی", "وشەی نهێنییەکەم", "وشەی نهێنییەکە",  # Sorani: password, my password
    "رمز الأدمن", "رمز الادمن", "رمز الدخول",  # Arabic: the admin's code, the entry code
    # Sudanese and Egyptian Arabic: its password (`الباسورد حقو …`, `… بتاعو …`)
    "الباسورد حقو", "الباسورد حقه", "الباسورد بتاعو", "الباسورد بتاعه", "كلمة السر حقت",
    "paswòd", "paswod",  # Haitian Creole (`modpas` below)
    # a PIN's name that a PIN of letters follows (`mã PIN là Sbf@8421`, `PIN 碼 Chen1968`)
    "mã pin", "ma pin", "pin 碼", "pin碼", "pin 码", "pin码",
    "jecha icciitii", "jecha darbii",  # Afaan Oromo: the secret word, the passing word
    "bimilbeonho", "bibeon",  # Korean romanised: 비밀번호, 비번 (`wifi bimilbeonho-neun …`)
    "pass wifi", "pass wi-fi", "palavra passe",  # (`pass wifi kho Thu Duc la …`)
    "paswud",  # Australian Kriol (`det nyuwan wifi paswud … im Dozergalah1988`)
    "bi̍t-bé", "bit-be",  # Taiwanese Hokkien in POJ: 密碼 (`Wi-Fi bi̍t-bé sī …`)
    "рамзи муваққатӣ", "рамзи махфӣ", "сырсөзү",  # Tajik: a temporary, a secret password;
    # Kyrgyz: its password
    "parol@", "parolը", "parol@ ",  # romanised Armenian: the password (`@` writes `ը`, the)
    "الباس", "والباس",  # Gulf Arabic: the pass (`باليوزر admin والباس …`)
    "upu lilo", "upu-lilo",  # Samoan: the secret word
    "གསང་ཚིག",  # Dzongkha, Tibetan
    "eochair shlándála", "eochair slándála", "eochair shlandala",  # Irish: a security key
    "passord", "lösenord", "adgangskode", "salasana", "hasło", "haslo", "heslo", "jelszó",
    "şifre", "parola", "parole", "пароль", "κωδικός", "mật khẩu", "kata sandi", "密码", "密碼",
    "口令", "パスワード", "暗証番号", "비밀번호", "סיסמה", "סיסמא", "סיסמת",
    "كلمة المرور", "كلمة السر", "كلمة العبور", "पासवर्ड",
    "الكلمة السرية", "كلمة السرية", "الكلمه السريه",  # (Maghrebi Arabic: the secret word)
    "الرقم السري", "رقم سري", "الرقم السرى",  # (Gulf Arabic: the secret number, a password)
    "الرمز السري", "الرمز السرّي", "رمز سري",  # (the secret code: Iraqi Arabic's password)
    "ramz-e obur", "ramze obur", "ramz obur", "ramzesh", "ramzash",  # Finglish: the password, its
    "รหัสผ่าน", "รหัสคือ", "wagwoord", "nenosiri", "nywila", "kata laluan", "neno la siri",
    "رمز عبور", "گذرواژه", "کلمه عبور", "የይለፍ ቃል", "በይለፍ ቃል", "contrasenya", "পাসওয়ার্ড", "lozinka",
    "лозинка", "پاس ورڈ", "باسورد", "الباسورد", "գաղտնաբառ", "პაროლი", "құпия сөз", "нууц үг",
    "құпиясөз",
    "fjalëkalim", "shifra", "shifrën", "shifren", "pasvord", "pasvordin", "pasvordi",  # (Albanian)
    "lykilorð", "lykilorðið", "lykilordid", "lykilord",
    "aðgangsorð", "aðgangsorðið", "adgangsordid",  # (Icelandic, and romanised)
    "slaptažodis", "parool", "geslo", "парола", "cyfrinair", "비번",
    "pasfhocal", "phasfhocal", "bpasfhocal",  # Irish, lenited and eclipsed too (`Is é an
    # pasfhocal … ná …`, `do phasfhocal sealadach ná …`)
    "الموديباس", "الموديپاس",  # Darija: `mot de passe` in Arabic letters
    *viewed_words(("စကားဝှက်",)),  # Burmese (`စကားဝှက်က Mdy#Sales2021 ပါ`), as the view
    # writes it (no vowel signs)
    "loyniorð",  # Faroese (`brúkari "bridge", loyniorð …`)
    "iphasiwedi",  # Zulu (`iphasiwedi yekhompyutha … ngu …`)
    "сырсөз", "сыр сөз", "parol", "пароль доступа",  # Kyrgyz, Uzbek; Russian's access password
    "парол", "паролини",  # Uzbek in Cyrillic (`Янги парол: …`), its accusative
    # (`пароль доступа xjMz…`)
    "ekigambo ky'ekyama", "ekigambo ky’ekyama", "шифра", "шифру",  # Luganda (the secret
    # word), Serbian
    "وشەی نهێنی", "وشەی تێپەڕ",  # Sorani Kurdish (the secret word, the passing word)
    "pakalla shimi",  # Kichwa (the secret word: `mushuk pakalla shimita churashkanchik: …`)
    "ፓስወርድ", "ፓስዎርድ", "ፓስወርዱ",  # Amharic, Tigrinya
    "የይለፍ ቃሉ", "መሕለፊ ቃል", "መሕለፊ ቃሉ",  # Amharic: the password (`ቃሉ`: its `ቃል`, a
    # syllable of its own); Tigrinya: the passing word
    "igama lokugqithisa", "igama lokugqitha", "phasewete", "passwuert",  # Xhosa (two
    # forms), Sesotho, Luxembourgish
    "pasword", "passowrd", "passwrod",  # (misspelt: a Secret's `pasword:` key is still read)
    # Quechua's suffixes on Spanish's words (`contraseñanqa …`, the topic; `contraseñataq`,
    # and the password; `clavenqa`), Vietnamese chat's `mk` (`mật khẩu`: `tk … / mk …`)
    "contrasenanqa", "contrasenataq", "contrasenaqa", "clavenqa", "claveqa", " mk ", " mk:",
    "\nmk:", "\nmk ", "pass là",  # (a line's `mk: …`; Vietnamese chat's `pass là …`: is)
    *viewed_words(("ọ̀rọ̀ aṣínà", "paswọọdụ")),  # Yoruba (the password), Igbo (as the view
    # writes them: no tone marks)
    "лозинком", "лозинку", "lozinkom", "lozinku", "κωδικό", "كلمة مرور", "كلمة سر", "كلمه مرور",
    "jelszavam", "jelszava", "jelszót",  # Hungarian: my password, its password, (the) password
    "jelszavát",  # (its password, as an object: `a rendelői gép jelszavát (…) írjam fel`)
    "รหัส wi-fi", "รหัส wifi", "รหัสwifi", "รหัสไวไฟ",  # Thai: the Wi-Fi's code, its password
    "事前共有鍵",  # Japanese: a VPN's pre-shared key
    "הסוד המשותף", "סוד משותף",  # Hebrew: (the) shared secret (RADIUS)
    "slaptažodį", "slaptažodžio", "slaptažodžiu",  # Lithuanian: accusative, genitive, with
    "paroli",  # Latvian's accusative (`iedeva kopīgu paroli: …`: gave a shared password)
    "parooli",  # Estonian's partitive (`ajutist parooli …`: a temporary password)
    "паролем",  # Russian's instrumental (`с паролем …`: with the password …)
    "beassansátni", "beassansáni",  # Northern Sámi (`Beassansátni: …`, `… lea …`)
    "salasanaa",  # Finnish's partitive (`kokeilin salasanaa Poro-Ivalo_2019`: I tried)
    "passwoort", "paaswoort",  # Low German, North Frisian (`dat Passwoort is …`)
    "mot de passa",  # Aranese (Occitan)
    "clau d'accés", "clau d’accés",  # Catalan: the access key (`clau d'accés: …`)
    "la pass ",  # (Spanish, Italian chat: `la pass es aneto3404`, `la pass del wifi è …`)
    "fockle-arrey", "fockle arrey", "fockle follit", "ger-kevrinek", "ger kevrinek",  # Manx,
    # Cornish: the password, the secret word
    "passu",  # Finnish slang (`passu Sorvaamo_04`)
    "ijambo ry'ibanga", "ijambo ry’ibanga",  # Kinyarwanda, Kirundi: the secret word
    "kalimat el sir", "kalimat al sir", "kelmet el ser", "kilmet el sir", "el pass ",  # Arabizi:
    # the secret word, the pass (`el user hdt.luban w el pass Oud.shop71`)
    "mima",  # Chinese in pinyin (`密码`: `yonghuming zhangmin, mima zhangmin0612`)
    "ʻōlelo huna", "olelo huna", "ōlelo huna",  # Hawaiian: the hidden word
    # a passphrase in Norwegian and Danish, Swedish, Danish; Vietnamese `mật mã` (passcode)
    "passfrase", "lösenfras", "adgangssætning", "mật mã",
    "lösen:", "lösen :",  # Swedish notes shorten `lösenord` (`lösen` alone: a ransom)
    "lösen ",  # (`Logga in med partner@… och lösen CollabHub2024#`: a value must follow)
    "رمز ورود", "รหัสผู้ดูแล",  # Persian: a login's password; Thai: an administrator's
    "κωδικός πρόσβασης", "κωδικό πρόσβασης", "kod laluan",  # Greek, Malay: access code
    # a customer's spoken password for a phone line or a bank (`кодовое слово — «Волга7129»`)
    "кодовое слово", "кодовым словом", "кодове слово", "code word", "codeword", "security word",
    "codewort", "kodewort",  # (German: `mit Namen und dem Codewort Bergkristall99`)
    "memorable word",  # (a UK bank's: `His memorable word is …`)
    # Hausa, Somali, Kinyarwanda (`kalmar sirri: …`, `Erayga sirta ah: …`, `Ijambo ry'ibanga …`)
    "kalmar sirri", "kalmar wucewa", "erayga sirta", "furaha sirta", "ijambo ry'ibanga",
    "ijambobanga", "jaettu salaisuus",  # (Finnish: a RADIUS server's shared secret)
    # a password manager's master password (`masterkoden på en seddel: "…"`)
    "masterkode", "master password", "masterpasswort", "hovedpassord", "huvudlösenord",
    "mot de passe maître", "contraseña maestra", "senha mestra", "hoofdwachtwoord", "pääsalasana",
    "sandi",  # (Indonesian `sandinya …`: `kata sandi` shortened)
    "sandhi",  # (Javanese: `WiFi kagem tamu: "KS-PENDOPO", sandhine pendopojogja57`)
    "salis",  # (Finnish speech's `salasana`: `käyttäjä Admin ja salis Kissa_2024`)
    "รหัส:", "รหัส :", "رمز جدید",  # Thai `รหัส:` (a code, as a label), Persian: new password
    "पासकोड", "رمز:", "رمز :", "رمزش", "foruddelt nøgle",  # (Persian `رمز:` is a login's
    # password; `رمز` alone is any code)
    "pasahitza", "contrasinal", "கடவுச்சொல்", "මුරපදය", "ពាក្យសម្ងាត់", "şifrə",
    "parol:", "parolni", "পাসফ্রেজ",  # (Uzbek, Azerbaijani, Kazakh in Latin letters; Bengali)
    "ລະຫັດຜ່ານ", "pass mới",  # (Lao; Vietnamese `pass mới là …`: the new password is)
    *viewed_words(("пасс",)),  # (Russian chat: `логин nbp_riga_ops пасс Maersk#Riga88`)
    # `pass for` in other languages (`pass za admin panel od weba je …`: Croatian)
    "pass za", "pass pour", "pass para", "pass per", "pass für", "pass voor", "pass dla",
    "pass ya", "pass ni",  # (Swahili, Sheng: `pass ya wifi ya guest ni …`, `pass ni …`)
    "awal uffir",  # (Kabyle: the secret word)
    "bimilbeonho", "bimilbeon", "bibeon",  # (Korean romanised)
    "passは",  # (Japanese: `admin passは「…」`)
    "neno ya siri", "mawu achinsinsi", "achinsinsi",  # (Congolese Swahili; Nyanja: the secret
    # words, `achinsinsi ake ndi …`, its secret is)
    # an access code, which a meeting's or a portal's may be as a password is (`Código de
    # acceso: LagoF#25`)
    "código de acceso", "codigo de acceso", "código de acesso", "codigo de acesso",
    "code d'accès", "code d'acces", "access code", "zugangscode", "toegangscode",
    *viewed_words(("ລະຫັດແມ່ນ",)),  # (Lao: the code is, as a login's: `ລະຫັດແມ່ນ Hrecruit2024#`)
    "modpas", "kontraseña",  # (Haitian Creole, Papiamento)
    "okwuntughe",  # (Igbo)
    "mo de pas",  # (Haitian Creole)
    "ciec",  # (Mexico's SAT portal password: `la CIEC LZf4Slu7`)
    "parolla d'intrata", "parolla d’intrata",  # (Corsican)
    "code secret",  # (French: a Teams meeting's passcode, `Code secret : NVCEox`)
    "kupuhipa", "باسوورد", "الباسوورد",  # (Māori, Gulf Arabic's spelling)
    # the English word as the scripts of India, Iran and Japan write it
    "பாஸ்வேர்டு", "பாஸ்வேர்ட்", "పాస్‌వర్డ్", "పాస్వర్డ్", "ಪಾಸ್‌ವರ್ಡ್", "ಪಾಸ್ವರ್ಡ್", "പാസ്‌വേഡ്",
    "പാസ്വേഡ്", "પાસવર્ડ", "ਪਾਸਵਰਡ", "پسورد", "پاسورد", "パスフレーズ",
    # `ww` (Dutch `wachtwoord`, `HIS inlog: …, ww Molen5177!`) only as a word of its own
    "ww ", "ww:", "ww=",
    "p a s s w o r d", "_pass", "-pass", ".pass", "pass=", "pass:", "pass =", "pass :",
    'pass"', "pass'", "pass`", "pass ==", "pw=", "pw:", "pw =", "pw :", 'pw"', "pw ", "psw", "pswd",
    "psk", "p/w", "dbpass", "rootpass", "adminpass", "userpass", "loginpass", "passkey",
    "upass",  # (a user table's `uname`/`upass` columns)
    "requirepass",
    "pword", "pass_word", "p4ssword", "p@ssword",
    "masterauth", "authtok",  # (SSSD's `ldap_default_authtok`)
    "community string", "community-string",  # SNMP's community: its password
    "snmp_community", "snmp-community", "snmpcommunity",  # (Zabbix's `{$SNMP_COMMUNITY} = …`)
    "mima",  # (pinyin: 密码)
    "kodikos", "kwdikos", "kwdiko", "kodiko", "kodikous", "kodikoi",  # Greeklish (`κωδικός`)
    # a Wi-Fi network's or a VPN's shared key is its password (`WLAN-Schlüssel: …`,
    # `Pre-shared key …`)
    "pre-shared key", "preshared key", "pre-shared-key", "wifi key", "wi-fi key", "wlan key",
    "forhåndsdelt nøkkel", "forhåndsdelt nøgle", "clé pré-partagée", "clave precompartida",
    "wpa key", "network key", "wlan-schlüssel", "wlan-schluessel", "netzwerkschlüssel",
    "clé wifi", "clé wi-fi", "cle wifi", "clé wpa", "clave wifi", "chiave wifi",
    # The word for `Password` as translators of Debian's message catalogues (Linux-PAM, GTK,
    # GLib, …) write it, where none of the words above reads it (`scripts/catalogue_words.py`
    # lists them): Danish, Korean, Hebrew's other spelling, Greek, Bosnian, Irish, Scottish
    # Gaelic, Breton, Esperanto, Interlingua, Tagalog, Uzbek, Tajik, Low German, the Indic and
    # Southeast Asian scripts, French and Danish words for a passphrase
    "kodeord", "adgangsfrase", "passordfrase", "phrase secrète", "phrase secrete", "암호",
    "ססמה", "ססמת", "συνθηματικό", "šifra", "šifru", "focal faire", "facal-faire", "ger-tremen",
    "pasvorto", "contrasigno", "contrasigne", "kontrasenyas", "maxfiy so'z", "maxfiy soʻz",
    "махфий сўз", "парол", "passwoord", "sır-söz", "senhal", "कूटशब्द", "शब्दकूट", "गुप्तशब्द",
    "गोप्यशब्द", "গুপ্তশব্দ", "পাছৱৰ্ড", "ପ୍ରବେଶ ସଙ୍କେତ", "ପ୍ରବେଶ ସଂକେତ", "సంకేతపదము", "ಗುಪ್ತಪದ",
    "അടയാളവാക്ക്", "രഹസ്യവാക്ക്", "රහස්පදය", "စကားဝှက်", "密語",
)
# "key" in Dutch, German, Spanish, Italian, Portuguese, Polish, Swedish, Catalan (`API-sleutel`,
# `clau de l'API`); each
# must start a word (`Enclave` holds `clave`)
_KEY_IN_LANGUAGES = ("sleutel", "schlüssel", "schluessel", "clave", "llave", "chiave", "chave",
                     "klucz",
                     "nyckel", "clau", "lykill")  # (Icelandic: `Sameiginlegi lykillinn … er:`)
# `code` in the languages that call a Wi-Fi's password so (`… hedder VHK-Crew-2G, koden er
# …`, `le wifi c'est Livebox-4411, le code est …`): a password only where a network is named
# before it (`_wifi_before`), read as nothing elsewhere
_WIFI_CODE_WORDS = ("code", "kode", "koden", "código", "codigo", "codice", "kod", "koodi", "الكود",
                    "الرمز", "رمز",  # (Arabic: the code, `الشبكة: X` / `الرمز الجديد: …`)
                    "รหัส",  # (Thai: `Wi-Fi ชื่อ … รหัส …`)
                    "ລະຫັດ",  # (Lao: `ຊື່ WiFi: … ລະຫັດ: …`)
                    "rahat",  # (Thai romanised: `wifi rong-ngan chue LSG-Line2 na, rahat …`)
                    "លេខកូដ",  # (Khmer: `Wi-Fi … ឈ្មោះ VLK-TK-Staff លេខកូដ …`)
                    "pass",  # (`Wifi name AGR-FLY-02, pass drillcore2025`)
                    "パス")  # (Japanese: `ゲスト用Wi-Fiは「…」でパスは …`; elsewhere a path)
# The English word `password` as any script spells it by its sounds (`ପାସୱାର୍ଡ୍` in Odia,
# `פאסווארד` in Yiddish, `ꯄꯥꯁꯋꯥꯔꯗ` in Meitei Mayek, `ޕާސްވޯޑް` in Thaana): each letter of
# the scripts that borrow it by sound is read as its consonant (from its Unicode name: `ORIYA
# LETTER PA` is p), vowels and signs as `·`, and the word is p, s, then r or w, then d, nothing
# else. The word lists above hold the spellings seen; this finds those of scripts no list has.
# B stands for p (Arabic has no p: `باسورد`); t does not stand for d (`בשרת`, `بسرعة`: in the
# server, quickly), the retroflex `ṭ` does (Tamil: `பாஸ்வேர்ட்`). Latin, Greek, Cyrillic,
# the kana and Hangul have their words in the lists (`пассворд` would meet `посреди`).
def _sound_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(0x0590, 0xABFF):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category in ("Mn", "Mc"):
            table[cp] = "·"
            continue
        name = unicodedata.name(ch, "")
        if category != "Lo" or not name or name.startswith(("CJK", "HANGUL", "HIRAGANA",
                                                           "KATAKANA", "YI ", "TANGUT")):
            continue
        words = name.split()
        at = next((i for i, w in enumerate(words) if w in ("LETTER", "SYLLABLE", "CHARACTER")),
                  None)
        own = [w for w in words[at + 1:] if w not in ("FINAL", "SMALL", "HIGH", "LOW")] if (
            at is not None) else []
        if not own or " VOWEL " in name or own[0] in ("SARA", "MAI", "NIKHAHIT"):
            table[cp] = "·"  # (Thai's and Lao's vowel letters: `SARA E`)
        elif own[0].startswith("TT"):
            table[cp] = "D"
        else:
            first = own[0][0]
            table[cp] = {"P": "P", "B": "P", "S": "S", "R": "R", "D": "D", "W": "W",
                         "V": "W"}.get(first, "·" if first in "AEIOUYH" else "C")
    table[0x200C] = table[0x200D] = "·"  # (zero-width joiners: `പാസ്‌വേഡ്`)
    return table


def _letter_ranges(table: dict[int, str], *sounds: str) -> str:
    """The code points read as one of `sounds`, as a regex class's ranges."""
    points = sorted(cp for cp, s in table.items() if s in sounds)
    ranges: list[tuple[int, int]] = []
    for cp in points:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"{chr(a)}-{chr(b)}" if b > a else re.escape(chr(a)) for a, b in ranges)


def _sounded(table: dict[int, str]) -> re.Pattern[str]:
    p, s, r, d, w, dot = (_letter_ranges(table, c) for c in "PSRDW·")
    # (each run is followed by a letter it cannot hold: linear; a vowel may come before the
    # p: Hebrew's `the`, `הפאסווארד`, see below)
    return re.compile(
        rf"[{p}][{dot}]*[{s}][{s}{dot}]*"
        rf"(?:[{w}][{w}{dot}]*(?:[{r}][{r}{w}{dot}]*)?|[{r}][{r}{w}{dot}]*)"
        rf"[{d}][{d}{dot}]*(?![\w{dot}])")


_SOUNDS = _sound_table()
# (a text with no p of those scripts holds no such word: one C scan, which a text of Latin
# letters and typography's dashes and quotes passes quickly)
_BORROWING_SCRIPT = re.compile(f"[{_letter_ranges(_SOUNDS, 'P')}]")
_SOUNDED_PASSWORD = _sounded(_SOUNDS)


def sounded_passwords(text: str) -> list[int]:
    """Where the English word `password` ends, spelt by its sounds in a script that borrows it."""
    if text.isascii() or _BORROWING_SCRIPT.search(text) is None:
        return []  # (Latin, Greek, Cyrillic, Armenian only: their lists hold their words)
    return [m.end() for m in _SOUNDED_PASSWORD.finditer(text)
            if not m.start() or not text[m.start() - 1].isalnum()
            or _SOUNDS.get(ord(text[m.start() - 1])) == "·"]


# A login's credentials named in prose (`"Credentials … is wrong". User says she types
# Nuapatna@65`): the told readers read after them as after a password word; the key/value
# readers do not (`credentials: …` is a key's name, read as one).
TOLD_ONLY = "told"
_CREDENTIALS_WORDS = ("credentials", "credenciales", "credenciais", "credenziali", "identifiants",
                      "zugangsdaten", "inloggegevens", "dane logowania")


# keyword -> kind; short keywords must start a word (no letter just before them).
GENERIC_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(_PASSWORD_WORDS, "password"),
    **dict.fromkeys(_CREDENTIALS_WORDS, TOLD_ONLY),
    "секрет": "apikey", "токен": "apikey", "geheimnis": "apikey",
    # a secret key in Chinese (simplified, traditional; `金鑰` in Taiwan), a token
    **dict.fromkeys(("密钥", "密鑰", "秘钥", "秘鑰", "金鑰", "令牌"), "apikey"),
    "키:": "apikey", "키 :": "apikey",  # Korean: a key named before a colon (`Admin 키: …`)
    # keys named in one lower-case word (`'storekey' =>`, `secretkey=`): `key` itself must
    # start a word (not `signingkey`: Git's `user.signingkey` names a GPG key's id)
    **dict.fromkeys(("secretkey", "merchantkey", "storekey", "encryptionkey", "masterkey",
                     "authkey"), "apikey"),
    # a web session's cookie (`laravel_session`, `PHPSESSID`, `sessionid`): its value is
    # the login
    **dict.fromkeys(("_session", "sessionid", "sessid", "phpsessid", "jsessionid", "session_token",
                     "sessiontoken", "session-token"), "apikey"),
    "secret": "apikey", "token": "apikey", "apikey": "apikey", "api_key": "apikey",
    "wstoken": "apikey",  # Moodle's web service token in its REST URLs
    "appsid": "apikey",  # Unifonic's API key (`-d "AppSid=…"`)
    "corpsecret": "apikey",  # WeCom's (企业微信) app secret: `gettoken?corpid=…&corpsecret=…`
    # Agora's App Certificate, which signs its RTC tokens (`const appCertificate = '…'`)
    "appcertificate": "apikey", "app_certificate": "apikey",
    # a MySQL dump's column named `pass` (`\`pass\` varchar(50)`, its values in the INSERT's
    # rows): the backtick makes the bare word a name
    "`pass": "password",
    # a payment gateway's HMAC key named a salt (JazzCash's `$integritySalt = "…"`)
    "integritysalt": "password", "integrity_salt": "password",
    "api-key": "apikey", "api key": "apikey", "access_key": "apikey", "accesskey": "apikey",
    "api 키": "apikey", "api키": "apikey",  # Korean (`REST API 키: …`)
    "appkey": "apikey", "app_key": "apikey", "app-key": "apikey", "totp": "apikey",
    **dict.fromkeys((f"{w}{sep}{n}" for w in ("recovery", "backup") for n in ("code", "key")
                     for sep in ("_", "-", " ", "")), "apikey"),
    "access key": "apikey", "x-jfrog-art-api": "apikey", "x-honeycomb-team": "apikey",
    "credential": "secret", "creds": "secret", "key": "secret", "auth": "secret",
    "jeton": "secret", "cle": "secret", "private_key": "secret",
    # a key, a secret, a token in other scripts (`キー：FGOK…`, `ключ: …`): machine-written
    # values only, as after `key`
    **dict.fromkeys(("キー", "シークレット", "秘密鍵", "ключ", "кључ", "κλειδί", "مفتاح", "מפתח",
                     "시크릿", "kulcs", "ključ", "설정 키", "비밀 키", "비밀키"),
                    "secret"),
    **dict.fromkeys(("トークン", "토큰"), "apikey"),
    **dict.fromkeys(_KEY_IN_LANGUAGES, "secret"),
    # a secret in Norwegian, Swedish, Danish (`Signeringshemmelighet: …`), Portuguese,
    # Spanish, Italian (`SEGREDO_WEBHOOK = '…'`, `este secreto del webhook:`): machine-written
    # values only, as after `secret`
    **dict.fromkeys(("hemmelighet", "hemlighet", "hemmelighed", "segredo", "secreto", "segreto",
                     "cyfrinach"),  # (and Welsh: `CYFRINACH_LLOFNODI = "…"`)
                    "secret"),
    "clave": "password",  # Spanish says "la clave" of a login as often as "contraseña"
    # a licence's key, in the languages that write it as one word or a phrase
    **dict.fromkeys(("licensnøgle", "lisensnøkkel", "lizenzschlüssel", "licentiesleutel",
                     "licensnyckel", "lisensiesleutel", "clé de licence", "cle de licence",
                     "clave de licencia",
                     "chiave di licenza", "chave de licença", "klucz licencyjny", "kunci lisensi",
                     "مفتاح الترخيص", "مفتاح المنتج", "lisans anahtarı"), "secret"),
    **dict.fromkeys(_WIFI_CODE_WORDS, "wifi_code"),
    "pass,": "sql_column",  # (an SQL column list's `(user, pass, full_name)`: its rows only)
    "bearer": "bearer", "basic": "basic", "authorization: token": "bearer",
    "authorization: ntlm": "bearer", "authorization: negotiate": "bearer",
    'authorization": "token': "bearer", 'authorization", "token': "bearer",
    "authorization', 'token": "bearer", "authorization': 'token": "bearer",
    "://": "url",
}
_WORD_START = frozenset({"psk", "pwd", "pword", "mdp", "psw", "pswd", "pw=", "pw:", "pw =", "ww ",
                         "lösen ", *_WIFI_CODE_WORDS, "upass",
                         "ww:", "ww=",
                         "pw :", 'pw"', "pw ", "p/w", "pass=", "pass:", "pass =", "pass :", "pass,",
                         'pass"', "pass'", "pass`", "pass ==", "key", "auth", "cle", "basic",
                         "bearer",
                         "token", "secret", "jeton", *_KEY_IN_LANGUAGES})


def keyword_overshoot(keyword: str) -> int:
    """How many characters of a keyword are its separator (`pass=`, `pw :`, `pass"`): the
    local match starts before them, where the name ends."""
    return len(keyword) - len(keyword.rstrip("=:\"' ,"))

# The copula in English and French (`password is …`, `le mot de passe est …`, `vaut …`),
# shared by the readers of a bare and of a quoted value.
_IS = r"is|est|c'est|c’est|vaut|was|etait|était"
# What may stand between a name and its operator: a closing quote (escaped in JSON inside a
# string: `\"password\":\"…\"`), a bracket (`['password'] =`, `char password[] =`) and a
# type annotation (`password: str =`, `val password: String =`; a type's name has its digits
# at its end, `int32`: `password: lQv71ci2EHaopX5U=MPowX` is a value holding `=`).
_NAME_END = r"""(?:\[\])?\\?["'`]?[)\]]?\*{0,2}[ \t]{0,16}
    (?::[ \t]{0,8}&?(?:'\w+[ \t]{1,8})?[A-Za-z_][A-Za-z_.]*\d{0,3}(?:\[[\w., ]*\])?\??[ \t]{0,8}
    (?==))?"""
# What may follow a name's last character where its operator begins (a prefilter: the
# readers below try their operators after every character of the name part `mid`, ~15
# alternatives each, so a flood of secret words cost ~30 µs per word; these lookaheads
# reject a position in one step and match nothing the operators would not). Not blank:
# any mark (`=`, `:`, a quote, a bracket) but `.` and `-`, which belong to names. After
# blanks: a mark (`-` too: `password - …`, `→`) or the first letters of the words read as
# an operator (`to`, `should be`, `is`, `est`, `c'est`, `vaut`, `a été`, `lautet`, `or`, …),
# after at most 24 blanks (the name's 16, for columns aligned as in `'secret_key'       => …`,
# and the operator's 8: bounded, so a keyword and a million blanks still cost a constant).
_OP_WORD_STARTS = (r"to|sh|wi|mu|is|wa|ha|re|se|ch|up|a[ \t]|es|mo|c['’]|va|et|ét|la|er|or|[éè]|εί"
                   r"|sa|än|ge|in|ca|im|är|je|ei|ni|na|ad|ia|là|ay|e[ \t]|fo|fu|yd|yw|so|th|ह"
                   r"|ir|us|zm|ti|on|še|wc|dé|def|ná|ng|as|it|bụ|st|le|ko|l['’]|nd"
                   r"|هي|هو|كا|הי|הו|হল|বদ|គ|ta|ez|இப|က|hi|hu|ho|ah|yɛ|ë|ke|ka|he|em|be|hè")
# "is" or a topic marker written right after the name, with no blank: Cantonese `係`,
# Chinese `是`/`为` (and `改成`, changed to), Japanese `は`, Korean `는`/`은`, Thai `คือ` and
# `เป็น` (`密碼係 …`, `パスワードは …`), Thai `ว่า` (that: `ตั้งรหัสผ่านว่า …`, the view drops its
# tone mark), Bengali `হলো`, whose vowel sign no `\b` follows, Khmer `គឺ` and Lao `ແມ່ນ` (the
# view drops their vowel and tone marks: `គ`, `ແມນ`), Burmese `က`
_GLUED_IS = (r"係|是|为|為|改成了|改为了|改為了|改成|改为|改為|更换为|更換為|更改为|变更为"
             r"|改咗做|改咗|設咗做|设咗做|設做|设为|設為"  # (Cantonese: changed to, set to)
             r"|變更為|は|는|은|คอ|เปน|เป็น|วา|ว่า|হলো|គ|ແມນ|က")
_OPERATOR_AHEAD = (r"(?=[^\w\s.\-]|" + _GLUED_IS + r"|[ \t]{1,24}+(?:[^\w\s.]|"
                   + _OP_WORD_STARTS + "))")
# The same for a quoted value, whose operator may also be a blank before the literal
# (`password "…"`, `password b'…'`, `password String::from("…")`, `password \n  "…"`).
_QUOTE_AHEAD = (r"(?=[^\w\s.\-]|[ \t]{1,24}+(?:[^\w\s.]|" + _OP_WORD_STARTS
                + r"|[bBrRuUfFLSn]|\r?\n))")
# …and for a literal passed after the name (`(`, a quote, `<value>`, `=`, `,`, a newline).
_CALL_AHEAD = r"""(?=[("'`)<\s:=,])"""
# The vowel signs and other marks of the scripts that write them inside a word (`बताया`):
# not `\w` to Python's `re`, so a name's words after a password's would end at them.
_MARKS = ("\u0300-\u036f\u0591-\u05c7\u064b-\u065f\u0900-\u0dff\u0e31-\u0e4e\u0eb1-\u0ecd"
          "\u1000-\u109f\u17b4-\u17d3")  # (… Thai, Lao, Myanmar, Khmer)
_TAIL_HEAD = (
    # (an aside in brackets after the name: `parola la PC-ul (s-a schimbat azi): …`)
    # (or, after a word of a script written without blanks, right after it:
    # `密碼從明天(6/12)起改為`)
    r"""(?P<mid>(?:[\w.\- \t""" + _MARKS + r"""]|['’](?=\w)|[ \t]\([^()\n]{1,40}\)"""
    r"""|[(（](?<=[\u3040-\u9fff][(（])[^()（）\n]{1,40}[)）]){0,48}?)"""
    + _OPERATOR_AHEAD + _NAME_END + r"""
        (?:={1,3}|!==?|:=|::|:-(?=[^\s-])|:|=>|\?=|<<?-|[ \t]{0,8}\|
           |՝  # Armenian's colon-like mark (`գաղտնաբառը՝ …`)
           |[ \t]{1,8}(?:->|→|⇒|—|–)(?=[ \t])
           |['’]s\b
           |,[ \t]{1,8}(?:which|that|que|qui|che|die|welches|welche)[ \t]{1,8}
            (?:is|was|es|era|est|était|è|é|ist|war)(?=[ \t])  # `…, que es …`
           |,[ \t]{1,8}(?:c['’]est|it['’]s|it[ \t]is|je[ \t]to)(?=[ \t])  # `…, c'est …`
           |,[ \t]{1,8}es[ \t]{1,8}lautet(?=[ \t])  # `…, es lautet …`
           |,[ \t]{1,8}(?:שהיא|שהוא)(?=[ \t])  # Hebrew: `…, שהיא …` (which is)
           |[ \t]{1,8}som[ \t]{1,8}(?:er|är|var)(?=[ \t])  # Nordic: `passordet mitt som er …`
           |[ \t]{1,8}[—–][ \t]{1,8}(?:it['’]s|it[ \t]is|c['’]est)(?=[ \t])  # `… — it's …`
           |(?<=[dD])[ \t]{1,8}na(?=[ \t])  # Tagalog's linker, right after `password`
           |[ \t]{1,8}(?P<to>to|(?:should|will|must)[ \t]be
              |(?:(?:is|was|has[ \t]been)[ \t]{1,8})?(?:re)?(?:set|changed|updated)[ \t]{1,8}to
              |(?:(?:a[ \t]{1,8}été|est)[ \t]{1,8})?(?:changé|modifié|remplacé)e?
               [ \t]{1,8}(?:en|par)
              |(?:satt|ändrat|ändrats|ändrad)[ \t]{1,8}till|gesetzt[ \t]{1,8}auf
              |geändert[ \t]{1,8}(?:auf|in|zu)|ingesteld[ \t]{1,8}op|gewijzigd[ \t]{1,8}(?:in|naar)
              |(?:gereset|veranderd)[ \t]{1,8}(?:naar|in)|til
              |a(?=[ \t]{1,8}\S*\d)  # (`le cambiamos la contraseña a Agus1985!`)
              |বদলে  # (Bengali: `পাসওয়ার্ড … বদলে X করা হয়েছে`, changed to X)
              |(?:ustawi|zmieni|změni|zmeni|nastavi)[lł]\w{0,3}[ \t]{1,8}na
              |(?:cambiada|establecida)[ \t]{1,8}a|(?:impostata|cambiata)[ \t]{1,8}(?:a|in)
              |d[ée]fini[e]?[ \t]{1,8}(?:sur|à|a|en)|(?:definida|definido)[ \t]{1,8}(?:como|en|a)
              |impostat[ao][ \t]{1,8}(?:su|come))
            (?=[ \t])
           |(?:""" + _GLUED_IS + r""")[ \t]{0,8}:?
           |[፦፡៖]  # Ethiopic's colon and wordspace (`የይለፍ ቃል፦ …`, `የይለፍ ቃል፡ …`), Khmer's colon
           |(?=[「『])  # a CJK quotation right after the name (`パスワード「…」`)
           |[ \t]{0,8}က(?=[ \t])  # Burmese's topic particle, glued or not: `စကားဝှက်က …`
           |[ \t]{1,8}(?:most|mostantól|இப்போ)(?=[ \t])  # no copula: `a jelszó most …`
           # (Hungarian; Tamil `password இப்போ …`: now)
           # nor Slovenian and Polish with `still` (`geslo za admin … še vedno …`)
           |[ \t]{1,8}(?:še[ \t]vedno|nadal|wciąż)(?=[ \t])
           # Zulu's and Xhosa's copula before a name, with its hyphen (`iphasiwedi ngu-Ilanga…`)
           |[ \t]{1,8}ngu-(?=[ \t]{0,8}[^\s-])
           |[ \t]{1,8}(?:(?:""" + _IS + r"""|ist|isch|lautet|war|es|era|é|è|er|är|jest|je|einai
                            |είvai|ni|adalah|ialah|là|thành|este|ay|e|és|foi|fue|ydi|yw|ydy|है|ह|hai|ir
                            |(?<![sS][ \t])on  # (Estonian, Finnish; not English's
                            # `keys on ks-vn-build01`: a plural before it)
                            |ná|ngu|ass
                            |হল|គ|se|ta  # (Bengali, Khmer; Haitian Creole, Papiamento)
                            |ithi|ethi|ezali  # (Zulu, Lingala)
                            |ita[ \t]ce|shi[ \t]ne|bụ  # (Hausa, Igbo: it is)
                            |ha['’]e  # (Guarani: `clave ha'e Mandioca22`)
                            |hija|huwa  # (Maltese: `il-password hija …`)
                            |hem|em|be  # (Pijin, Tok Pisin, Hiri Motu: `password em …`)
                            |stay  # (Hawaii Pidgin: `password stay PaycheckPono57$`)
                            |lea  # (Northern Sámi: `beassansátni lea dál …`)
                            |hemi  # (Bislama: `niu pasword hemi …`)
                            |ko  # (Pulaar: `mot de passe ko Fuuta2023Kaedi`)
                            |hè  # (Corsican)
                            |ndi  # (Nyanja: `achinsinsi ake ndi …`)
                            |l['’]è  # (Lombard, Ticinese: `la password l'è …`)
                            |howa|hiya|mooy|moy  # (Darija in Latin letters, Wolof: it is)
                            |waa|ah  # (Somali: `furaha sirta ah …`, `… waa …`)
                            |yɛ  # (Twi: `password no yɛ …`)
                            |është|eshte|a[ \t]zo|ken|kenet|kan  # (Albanian, Breton; Levantine
                            # Arabic in Latin letters: `el password ken …`)
                            |هي|هو|كانت|كان|היא|הוא|הייתה|היה)\b
              |=|:|-(?=[ \t]))
            (?:[ \t]{1,8}(?:now|set[ \t]to|jetzt|nun|agora|ahora|maintenant|adesso|nu|teraz|nå|nyt
                |dál|privremeno|trenutno|sada))?)
        [ \t]{0,24}(?:\*{1,2}[ \t]{0,8})?  # Markdown emphasis: `**Password:** …`
        # `still`, `now`, `currently` after the operator (`Hasło do skrzynki to nadal …`)
        (?:(?:still|nadal|wciąż|še[ \t]vedno|stadig|fortsatt|fortfarande|todavía|ainda|ancora
             |toujours|immer[ \t]noch|nog[ \t]steeds|tällä[ \t]hetkellä|edelleen|yhä|currently
             |actuellement|zurzeit|derzeit|momenteel|actualmente|attualmente)[ \t]{1,8})?
        (?:!!\w{1,16}[ \t]{1,8})?  # a YAML tag: `password: !!str …`
        # an instruction to type it (`la password responsabile: digitare …`)
        (?:(?:digitare|inserire|enter|type|tapez|saisir|digite|digitar|introduzca|escriba)
           [ \t]{1,8})?
        (?:[|>][-+]?[ \t]{0,8}\r?\n[ \t]{1,16})?(?:\\?["'`\[]|[«「『])?[ \t\u00a0\u202f]{0,8}
        (?P<v>""")
_TAIL = re.compile(_TAIL_HEAD + r"""[^\s"'`;,<>()\[\]{}|\\«»「」『』]{4,256}?)(?:\*\*)?
    (?=["'`;,<>)\]}|\s»」』]|\\|$|\((?=[^)\n]{0,12}[^\x00-\x7f]))""", re.X)
# (`etqi0151（私の…`, `Fuji7182!hq（3か月ごとに変更）`: an aside in another script)
# The same with brackets inside the value, read to its end: `db_pass: m{{h}o)p${e]nob(…`, a
# generated password (`_symbolic`: its brackets do not balance as code's do).
_TAIL_BRACKETS = re.compile(_TAIL_HEAD + r"""[^\s"'`;,<>()\[\]{}|\\][^\s"'`;,|\\]{7,127})
    (?=["'`;,]?[ \t]{0,8}(?:\r?\n|$))""", re.X)
_CLOSERS = frozenset(")]}")
# an aside that says how a key is written (`AES-256 key (hex): C2D4…`), not what it is
_ENCODING_ASIDE = re.compile(r"\((?:hex|base64|b64|base32|ascii|utf-8|bytes)\)", re.I)
# C's `#define NAME "…"` sets the name as `=` would (`#define FW_UPDATE_KEY_HEX "1cfc…"`)
_C_DEFINE = re.compile(r"(?:^|\n)[ \t]*#[ \t]*define[ \t]+\w*$")
# a name called, indexed or given type parameters: `frozenset([`, `list[Token])`
_APPLIED = re.compile(r"[\w$.]+[(\[]")
# an opening bracket within 64 characters on the line: only then is `_TAIL_BRACKETS` tried
_BRACKET = re.compile(r"[^\n(\[{]{0,64}[(\[{]")
# brackets joined as code joins them: `}).merge(`, `f()(`, `){`, a line ending in `(`
_CODE_JOINT = re.compile(r"[)\]}]\.[A-Za-z_]|\)\(|\(\)|\)\{|[(\[{]$")
# The same, for a quoted value that may hold spaces: `password = "correct horse battery"`;
# with a string prefix (`b'…'`, `r"…"`, `@"…"`, T-SQL's `N'…'`) or escaped quotes. The value
# may hold the other quotes and an escaped backslash (`"pa'ss`w\\rd"`), not start or end with
# a quote (`'"+pw+"'` joins strings; see `_joined`). The operator may also be a default after the
# variable is read (`os.getenv("DB_PASSWORD") or "…"`, `getenv('…') ?: '…'`, Ruby's
# `ENV.fetch("…") { "…" }`) or a template's default filter (`.Values.password | default "…"`);
# the quotes may be tripled (TOML's and Python's `"""…"""`), and a blank pasted inside them
# is not the value's (`access_token: " P341_…"`, `auth_token = "7255…f96 "`).
_QUOTED_HEAD = (
    # (an aside in brackets after the name: `Master-Passwort (Passphrase, Leerzeichen
    # gehören dazu!): "…"`)
    r"""(?P<mid>(?:[\w.\- \t]|[ \t]\([^()\n]{1,40}\)){0,24}?)""" + _QUOTE_AHEAD + _NAME_END + r"""
        (?:={1,3}|!==?|:=|::|:|=>|\?=|<<?-|\|\||\?\?|\?:|[ \t]{1,8}or\b
           |\)[ \t]{0,8}(?:\|\||\?\?|\?:|or\b|\{)|\|[ \t]{0,8}default\b\(?
           |[ \t]{1,8}(?:""" + _IS + r"""|ist|isch|lautet|es|è|é|er|är|on|je|jest|era|war
                        |holo|hai|হল)\b  # (Bengali, Hindi in Latin letters: `… ta holo "…"`)
            (?:[ \t]{1,8}(?:literally|just|simply|actually|currently|still|tällä[ \t]hetkellä|nyt
               |edelleen|jetzt|noch|toujours|actuellement|ahora|todavía|agora|ainda|adesso|ancora
               |nadal|teraz))?  # `The passphrase is literally "…"`, `on tällä hetkellä "…"`
           |,[ \t]{1,8}(?:which|that)[ \t]{1,8}(?:is|was)\b  # `the passphrase, which is "…"`
           |[ \t]{1,8}to(?=[ \t]{1,8}["“«])  # `set the master passphrase to "…"`
           |(?P<bare>(?=[ \t])))
        [ \t]{0,24}(?:\r?\n[ \t]{1,16})?  # (values aligned in a column: `password:      '…'`)
        (?:[@bBrRuUfFLN]|(?:\[\]byte|String::from|SecretStr|SecretString|Secret|String
           |new[ \t]String|Some
           |(?:\w{1,24}(?:\(\))?\.){0,3}(?:fromhex|b64decode|urlsafe_b64decode|unhexlify
           |FromBase64String|FromHexString|base64_decode|hex2bin|decodeHex|parseHexBinary
           |hex::decode|hexToBytes|hexStringToByteArray|hexToByteArray|hex_to_bytes|from|parseHex|decode
           |fromBase16|fromBase64|fromUtf8))  # (Dart's `encrypt`: `Key.fromBase16('…')`)
           \([ \t]{0,4})?""")
_QUOTE_REACH = 320
_QUOTED = re.compile(_QUOTED_HEAD + r"""
    (?P<q>\\?["'`])(?:(?P=q){2})?[ \t]?
    (?P<v>(?:[^"'`\n\\]|(?!(?P=q))["'`]|\\\\){4,128}?)[ \t]?(?P=q)""",
    re.X)
# The same for a token longer than a quoted value's 128 characters, of a token's characters
# only (`const MF_TOKEN = '1Rj8…'`, 400 characters of a payment gateway's key): read when the
# short form finds nothing.
_QUOTED_LONG = re.compile(_QUOTED_HEAD + r"""
    (?P<q>["'`])(?P<v>[A-Za-z0-9_\-.+/=]{129,4096})(?P=q)""", re.X)
# The same in guillemets or typographic quotes, as prose writes them (`la passphrase est
# «fennel mosaic marble»`, `password “…”`, Hungarian and German `„…”`, `„…“`): a phrase in
# them is read as one in quotes.
_QUOTED_MARKS = re.compile(_QUOTED_HEAD + r"""
    [«“„][ \t\u00a0\u202f]?(?P<v>[^«»“”„\n]{4,128}?)[ \t\u00a0\u202f]?[»”“]""", re.X)
# A literal passed right after the name: `setPassword("…")`, `define('DB_PASSWORD', '…')`,
# `.password("…")`, `secret("…")`, and an XML setting `key="DbPassword" value="…"`.
_CALL = re.compile(
    r"""(?P<mid>[\w.\-]{0,24})""" + _CALL_AHEAD + r"""
        (?:(?:\(|["'`][ \t]{0,8},|["'`][ \t]{1,8}value[ \t]{0,8}=|\)\.to(?:Be|Equal|StrictEqual)\(
              |["'][ \t]{0,8}\{[^}\n]{0,40}?\bdefault[ \t]{0,8}=)
           [ \t]{0,8}(?P<q>["'`])(?P<v>[^"'`\s\\]{4,128}?)(?P=q)(?![ \t]{0,8}:)
          |["']?[ \t]{0,8}\r?\n[ \t]{0,8}value[ \t]{0,8}:[ \t]{0,8}
            (?P<q2>["']?)(?P<v2>[^"'\s]{4,128})(?P=q2)
            (?=\s|$)
          |(?:["'][ \t]{0,8}>|</\w+>[ \t]{0,8}<value>|["'][^<>\n]{0,80}>[ \t]{0,8}<value>)
            (?P<v3>[^<>\s]{4,128})<
          |["']?[ \t]{0,8}(?::?=|:|=>)[ \t]{0,8}[\w.$\[\]"']{0,64}?
            (?:getenv|get|fetch|getOrDefault|setdefault|env|getProperty)[ \t]{0,8}\(
            [ \t]{0,8}["'](?P<env>[^"'\n]{1,64})["'][ \t]{0,8},
            [ \t]{0,8}(?P<q4>["'])(?P<v4>[^"'\s\\]{4,128}?)(?P=q4)
          |[ \t]{0,8},[ \t]{0,8}(?P<q5>["'])(?P<v5>[^"'\s\\]{4,128}?)(?P=q5)[ \t]{0,8}\)
          |["']?[ \t]{0,8}+(?::?=|:|=>)[ \t]{0,8}+(?:(?:<%=?-?|\{\{-?)[ \t]{0,8}+)?
            (?:(?P<env7>[\w.$:\[\]()"']{1,64}+(?:[ \t]{1,4}+[\w.$:\[\]()"']{1,64}+){0,6}?)
               [ \t]{0,8}+(?:\|\||\?\?|\?:|\bor\b|\|[ \t]{0,8}+default\b)
              |default(?=[ \t]))
            [ \t]{0,8}+(?P<q7>["'])(?P<v7>[^"'\s\\]{4,128}?)(?P=q7)
          |["'][ \t]{0,8}(?::[ \t]{0,8}\{|,)[ \t]{0,8}(?:\r?\n[ \t]{0,16})?["']value["'][ \t]{0,8}
            :[ \t]{0,8}
            (?P<q6>["'])(?P<v6>[^"'\n\\]{4,128}?)(?P=q6))""",
    re.X,
)
# A call comparing its two arguments: `strcmp(`, `assertEquals(`, `assert_eq!(`.
_COMPARE_FN = r"\b(?:strn?cmp|assert\w{0,12}[Ee]quals?|assert_eq!?|equals?|compare\w{0,8})\("
# the words that may follow `as` before the name: `use … as the password`
_AS_ARTICLES = ("the", "your", "my", "a", "new", "our")
# A literal compared with a secret's variable, written before it: `"…" == password`,
# `"…".equals(password)`, `assertEquals("…", password)`, `strcmp("…", pwd)` (read backwards
# from the name, in a bounded window); `v5` above is the same comparison written after it.
_COMPARED_BEFORE = re.compile(
    r"""(?:(?P<q>["'])(?P<v>[^"'\s\\]{4,128})(?P=q)[ \t]{0,8}
          (?:===?|!==?|\.equals(?:IgnoreCase)?\()
        |""" + _COMPARE_FN + r"""[ \t]{0,8}
          (?P<q2>["'])(?P<v2>[^"'\s\\]{4,128})(?P=q2)[ \t]{0,8},
        |\b(?i:use|using|with|set|choose|chose|pick)[ \t]{1,4}(?P<v3>[^\s"'`]{6,64})[ \t]{1,4}
          as[ \t]{1,4}(?:(?:""" + "|".join(_AS_ARTICLES) + r""")[ \t]{1,4})?)
       [ \t]{0,8}(?:[\w$]{1,32}\.){0,3}$""",
    re.X,
)
# the name (`password`, `user.password`) as a comparison call's first argument
_COMPARE_CALL = re.compile(_COMPARE_FN + r"[ \t]{0,8}(?:[\w$]{1,32}\.){0,3}$")
_COMPARE_METHOD = re.compile(r"\.(?:equals(?:IgnoreCase)?|contentEquals|compareTo)")
# a setting's value, as explicit as `=`: `key="ApiKey" value="…"`, `<value>…`, `value:`
_SETTING_VALUE = re.compile(r"\bvalue[\"']?[ \t]{0,8}[=:]|<value>")
_NAME_TAIL = re.compile(r"[\w$]{1,32}")
# the next parameter of a query string ends a value: `?api_key=…&format=json`
_NEXT_PARAM = re.compile(r"&[\w.\[\]-]{1,40}=")
# A password named in prose with no operator: `use password Welcome123 to log in`.
# (French puts adjectives after the name: `mot de passe provisoire …`.)
_BARE = re.compile(r"(?P<mid>(?:et|en|si|sı|yi|yı|lla|llä|ksi|ga|m|n|niz|nız|miz|mız|nya|тa"
                   r"|ը|-ը|ս|դ|ն|nye|qa|pax|ne|e|in|it|i|-u|-ka|-ku|-kiisa|ใหม)?"
                   # (the English word with Amharic's and Somali's article: `password-u …`,
                   # `password-ka …`; Thai's new, glued: `รหัสผ่านใหม่ …`, as the view writes it)
                   # `lösenordet`, `şifresi`, `şifreyi`, Finnish `salasanalla`, `passwordnya`,
                   # Bulgarian `паролата` (`тa`: the view writes Cyrillic's `а` as Latin's),
                   # Estonian `parooliga` (with the password),
                   # Armenian `գաղտնաբառը` (`-ս`, `-դ`: my, your), Quechua `contraseñaqa`,
                   # Aymara `clavepax` (topic),
                   # Javanese `sandine`, `passworde` (its), Albanian `fjalëkalimi(n)` (the)
                   # (two adjectives at most: Romanian `parola temporară comună …`)
                   r"(?:[ \t]{1,4}(?i:provisoire|temporaire|initiale?|actuelle?|שלי|שלו|שלה"
                   r"|temporal|tempor[aá]ria|provis[oó]ria|tymczasowe|la[ \t]muda|jipya"
                   r"|temporar[ăa]|comun[ăa]|ini[țţ]ial[ăa]|provizori[eu]|sementara"
                   r"|par[ \t]d[ée]faut|currently|startowe|pocz[aą]tkowe|jednorazowe"
                   r"|nova|nuova|nueva|nou[ăa]|new|neue|neues|nieuwe|nowe|nouveau|attuale|actual|atual"
                   r"|temporanea|provvisoria|iniziale|predefinita|tijdelijke?|midlertidig"
                   r"|i[ \t]p[ëe]rkohsh[ëe]m|i[ \t]ri"  # (Albanian: temporary, new)
                   r"|bta3o|bta3ha|bta3y|dyalo|dyalha|taba3o|taba3a|taba3ha|taba3e"
                   r"|mta3o|mta3ou|mte3o|mte3ou|mta3ha|mte3ha|mta3i|mte3i"
                   r"|mo2akat|mo2aqat|mo2a2at|مؤقت|مؤقتة"  # (temporary)
                   # (Arabizi, Egyptian, Moroccan, Levantine, Tunisian: its, hers, mine)
                   r"|بتاعه|بتاعها|بتاعي|تبعه|تبعها|تبعي|ديالو|ديالها|ديالي"  # (the same in Arabic)
                   r"|tillfälligt|väliaikainen|vorläufiges|temporäres"
                   r"|aktuelle|aktuelles|current|huidige|obecne|langu|yangu|yandi|ake"
                   # (Indonesian, Vietnamese, Irish, Basque, Hebrew: new; French, Romanian:
                   # current)
                   r"|baru|mới|nua|berria|חדשה|actuel|curent[ăa]"
                   # (an administrator's, in Romance languages; Malay `dia`: its)
                   r"|amministratore|administrador|administrateur|dia|הזמנית|הזמני|החדשה"
                   r"|الجديد|الجديدة"
                   r"|එක|isə)){0,2})"  # (Sinhala's article after the noun: `password එක …`;
                   # Azerbaijani `şifrə isə …`: as for the password)
                   # an instruction to type it (`contraseña poner Castellana.1499PC`)
                   r"(?:[ \t]{1,4}(?:poner|introducir|escribir|digitare|inserire|eingeben|saisir"
                   r"|twalla|walla|twallet|wallet))?"  # (Tunisian Arabizi: became)
                   # what it opens (`пароль від пошти Karpaty#492`; the view writes `і`, `о`
                   # as Latin letters): then a value mixing three kinds of character at least
                   r"(?P<of>[ \t]{1,4}(?:в[іi]д|для|[оo]т|for|of|de|du|da|do|del|della|di|dla|für"
                   r"|za|til|för|per|voor|van|zum|zur)"
                   r"[ \t]{1,4}[^\W\d_]{2,20})?"
                   r"[ \t]{1,8}(?P<v>[^\s\"'`;,<>()\[\]{}|]{6,64})(?=[\s.,;)\"'”’]|$)")
_BEARER = re.compile(r"[ \t]{1,8}(?P<v>[A-Za-z0-9\-._~+/]{16,}=*)(?=[\s\"'`;,)\]}]|\\[nrt]|$)")
# (a `?` in the password, unescaped: `http://kaunter01:Harbor?9686@proxy…`; not after a
# port: `https://host:8443?next=me@x.com`)
_URL = re.compile(
    r"(?P<user>[^\s:/?#@'\"<>]{0,128}):(?P<v>(?!\d{1,5}\?)[^\s/?@'\"<>][^\s/@'\"<>]{0,255})"
    r"@(?=[\w\[])"
)
# A password with a `/` left unescaped, after an empty user name, as Redis URLs carry one
# (`redis://:Ggqxv3egjWofu8trQY/o84eS@cache:6379/0`); not a port and a path (`http://:8080/…`)
_URL_SLASHED = re.compile(
    r"(?P<user>):(?P<v>(?!\d{1,5}/)[^\s/@'\"<>][^\s@'\"<>]{5,254})@(?=[\w\[])")
# A token passed as the URL's user name (`https://<token>@github.com/…`, or with GitHub's
# fixed password, which says the user name is the token)
_TOKEN_PASSWORD = "x-oauth-basic"
_URL_TOKEN_USER = re.compile(
    rf"(?P<u>[A-Za-z0-9_-]{{20,255}})(?P<basic>:{_TOKEN_PASSWORD})?@(?=[\w\[])", re.I)
# the host of a Sentry DSN (`https://<public key>@o123.ingest.sentry.io/…`)
_PUBLIC_DSN = re.compile(r"(?:o\d+\.)?ingest\.(?:[a-z]{2}\.)?sentry\.io\b|sentry\.io/")


_BARE_ADJECTIVE = re.compile(r"(?i)startowe|pocz[aą]tkowe|jednorazowe|tymczasowe|temporary|initial"
                             r"|provisoire|temporaire|initiale?|temporal|sementara")


def _value_before_operator(m: re.Match[str]) -> bool:
    """A `_TAIL` match whose operator follows the password's value rather than its name
    (`şifre Dostluk510 – büyük harf`, `passord Nordlys64 – bytt det`, Thai `รหัสผ่าน ESdrqb3653
    ซึ่งเป็นรหัส…`, "which is the code …"): the first word after the name could be a value (a
    name's words hold no digit) and what the operator leads to could not."""
    words = m.group("mid").split()  # (`password scuola.Rossi39 solo per firmare e …`: six)
    if words and not m.group("mid")[0].isspace():
        words = words[1:]  # the name's own ending (`şifresi apron34* — …`: Turkish `-si`)
    if len(words) > 1 and _BARE_ADJECTIVE.fullmatch(words[0]):
        words = words[1:]  # `hasło startowe AdquNoQpxw@ - zmień je`
    return (0 < len(words) <= 6 and (any(c.isdigit() for c in words[0])
                                     or not _SYMBOLS.isdisjoint(words[0]))
            and _bare_value(words[0]) and not _bare_value(m.group("v")))


def _generated_value(m: re.Match[str] | None) -> TypeGuard[re.Match[str]]:
    """A `_TAIL_BRACKETS` match is a generated value, its brackets not code's (`to …`,
    `itemgetter(1))`, `0}).merge(` are not)."""
    return m is not None and m.group("to") is None and not _APPLIED.match(m.group("v")) and (
        not _CODE_JOINT.search(m.group("v")) and _symbolic(m.group("v")))


def _psql_variable(text: str, quote: int, v: str) -> bool:
    """`:'name'` after a blank (`PASSWORD :'report_pwd'`): psql interpolates the variable
    `name` there; a value is written `: '…'` or `:'…'` right after a name."""
    return (quote >= 2 and text[quote - 1] == ":" and text[quote - 2] in " \t"
            and _NAME_VALUE.fullmatch(v) is not None)


def _wifi_before(text: str, pos: int) -> bool:
    """A Wi-Fi network is named before `pos` on its line (200 characters at most), or as
    `wifi`/`wlan`/`ssid`/`network:` on the line above (`- wifi: netwerk X` / `- sleutel: …`,
    `Network: TADLA-STAFF` / `Key: …`): its password is
    the `key` (`clé`, `Schlüssel`) there. (Substring tests, no loop: this runs for every
    `key` of a text.)"""
    nl = text.rfind("\n", max(0, pos - 200), pos)
    line = text[max(nl + 1, pos - 200):pos].lower()
    if ("wifi" in line or "wi-fi" in line or "wlan" in line or "ssid" in line
            or "wpa" in line or "wireless" in line or "sans fil" in line or "sans-fil" in line
            or "réseau" in line or "netzwerk" in line  # (`réseau "X", la clé c'est …`)
            or any(w in line for w in _OTHER_WIFI)):
        return True
    if nl <= 0:
        return False
    above = text[max(text.rfind("\n", max(0, nl - 200), nl) + 1, nl - 200):nl].lower()
    return ("wifi" in above or "wi-fi" in above or "wlan" in above
            or any(w in above for w in _WIFI_ABOVE)
            or _SSID.search(above) is not None)  # (not `accessIdentity`)


_SSID = re.compile(r"(?<![a-z])ssid(?![a-z])")
# Wi-Fi in other scripts (Arabic `الويفي ديال …`, Thai `ไวไฟโรงอาหาร … ชื่อ … รหัส …`)
_OTHER_WIFI = ("ويفي", "واي فاي", "وايفاي", "ไวไฟ")
# a network named on the line above (`Network: X` / `Key: …`)
_NETWORK_ABOVE = ("network:", "réseau :", "réseau:", "الشبكة:", "الشبكة :")
_WIFI_ABOVE = (*_OTHER_WIFI, *_NETWORK_ABOVE)


# a code word followed by the network's name: `Le code WiFi de la salle … est …`, Lingala's
# and Swahili's `code ya wifi …`
_WIFI_AFTER = re.compile(r"(?i)[ \t]{1,3}(?:(?:du|de[ \t]la|de|del|della|do|da|dla"
                         r"|of[ \t]the|for[ \t]the|of|for|i|ya)[ \t]{1,3})?(?:wi-?fi|wlan)\b")


# the keyword is the user name of a URL: `://` then the name, up to the keyword's end
_USERINFO_BEFORE = re.compile(r"://[^\s/?#@:'\"<>]{0,64}$")
# the words of an expression reading a variable, which say nothing of what it holds:
# `ENV['X']`, `os.environ.get("X")`, `{{ env "X" }}`, `.Values.x`
_ENV_READ_WORDS = frozenset(("env", "environ", "os", "process", "getenv", "get", "fetch",
                             "values"))
_VALUE_GROUPS = ("v", "v2", "v3", "v4", "v5", "v6", "v7")
# Letters of scripts written without blanks between words: Japanese kana, CJK ideographs,
# Hangul syllables, Thai, Lao, Burmese, Khmer
_UNSPACED_SCRIPT = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
    r"\uf900-\ufaff]")
_COMMA_FORM = re.compile(r"[\w.\-]*[\"'`][ \t]*,")
# a command-line option in an argument list, its value the next string (`["redis-server",
# "--requirepass", "…"]`: Docker's exec form, Compose's `command:`, Kubernetes' `args:`)
_FLAG_NAME = re.compile(r"""["'][ \t]*--?[\w-]{1,40}$""")


def _value_group(m: re.Match[str]) -> str:
    """The name of the group of a reader's match that holds the value (each reader names
    its alternatives' values `v`, `v2`, …)."""
    return next(g for g in _VALUE_GROUPS if g in m.re.groupindex and m.group(g) is not None)


# the cells of a row before a setting's name: numbers, NULL, short quoted strings (`(5,`,
# `(2,'twitch',`)
_ROW_CELLS = re.compile(
    r"""(?:[ \t]*(?:-?\d{1,12}|NULL|'[^'\n]{0,64}'|"[^"\n]{0,64}")[ \t]*,)*[ \t]*""")


def _key_value_row(text: str, pos: int, m: re.Match[str], kind: str) -> bool:
    """A row of a settings table, the name quoted and its value next (`('smtp.password',
    'BAdCU7DC#ORQjssEWt', NOW())`, `(5,'smtp_pass','Feldkirch-Bahnhof_44','2022-…')`,
    `(2,'twitch','client_secret','xrgi29…',…)` in an SQL insert): the name is a cell of a
    row opened by a parenthesis or a bracket, after numbers or short strings only, the value
    is the next cell, and it mixes the four kinds of character or is a generated password
    (not a list of names, `("user", "password", "email")`); under a key's name, a value a
    machine wrote."""
    quote = max(text.rfind('"', max(0, pos - 64), pos), text.rfind("'", max(0, pos - 64), pos))
    opener = max(text.rfind("(", max(0, quote - 160), quote),
                 text.rfind("[", max(0, quote - 160), quote))
    if quote <= 0 or opener < 0 or _ROW_CELLS.fullmatch(text, opener + 1, quote) is None:
        return False
    if text[m.end():m.end() + 8].lstrip(" \t")[:1] not in (",", ")", "]"):
        return False
    v = m.group(_value_group(m))
    if kind != "password":
        return (plausible_secret(v, quoted=True) and (random_token(v, 16) or long_hex(v)
                                         or random_one_case(v)))
    return (len(v) >= 10 and (char_classes(v) >= 4 or _symbolic(v))
            and plausible_password(v, True))


def _first_argument(text: str, pos: int) -> bool:
    """The quoted name around `pos` is a call's first argument: `define('DB_PASSWORD', …`,
    not an item of a list or tuple."""
    i = pos
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_.-"):
        i -= 1
    if i == 0 or text[i - 1] not in "\"'`":
        return False
    i -= 1
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    return i > 1 and text[i - 1] == "(" and (text[i - 2].isalnum() or text[i - 2] == "_")


def _last_pair(text: str, pos: int, end: int) -> bool:
    """The quoted name around `pos` and the literal ending at `end` are a call's last two
    arguments: `config.set('db', 'password', '…')`, `props.setProperty(k, "password",
    "…")`; not a tuple (`("username", "password", "email2")`)."""
    if not text.startswith(")", end) and text[end:end + 8].lstrip(" \t")[:1] != ")":
        return False
    i = text.rfind("(", max(0, pos - 120), pos)
    return (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
            and ")" not in text[i:pos])


# Words in a name that make its value a non-secret: key_id, token_url, secret_name, …
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# `public` in other languages, as an adjective after a key's name (`chiave pubblica …`) or a
# word before it (`publik nyckel: …`): the value is a public key
_PUBLIC_IN_LANGUAGES = ("publik publika offentlig offentliga publique publica publico pubblica "
                        "publiek")
_SKIP_WORDS = _words(
    "id ids name names url uri urls endpoint file files path type types length size len "
    "version field fields header headers format prefix policy policies rotation expiry "
    "expires expiration ttl count hint label alias pair board word words point points "
    "takeaway takeaways feature features metric metrics concept concepts difference "
    "differences strength reset requirement requirements input prompt hash algorithm "
    "algo manager store storage vault location env variable var method mode scope scopes "
    "usage question questions idea ideas issue issues message messages "
    "public pub publishable bucket schema foreign primary sort partition cache "
    + _PUBLIC_IN_LANGUAGES + " "
    "str chars valid next page cursor continuation pagination binding bindings example examples "
    "sample samples region encoding hasher model charset locale result results marker "
    "container containers "  # (Windows' `Key Container = te-WebServer-…`: a key's store)
    "tag tags "  # `auth_tag` of an AES-GCM ciphertext, `secret_tag`: a label
    "authorized "  # (`~/.ssh/authorized_keys on ks-vn-build01`: a file of public keys)
    "age "  # (`MaxPasswordAge : 365.00:00:00`)

    "idempotency "  # `Idempotency-Key: <uuid>`: a request marker
    "hashing "  # `password hashing to argon2id`: an algorithm
    "socket "  # `Sec-WebSocket-Key`: a handshake's nonce, sent in the clear
    "mgmt management "  # `key_mgmt=WPA-PSK`: a setting's name
    "idem "  # `idem-key=<uuid>`: an idempotency key
    "last"  # `Password last set: 02-09-2024`: when, not what
) | frozenset(viewed_words(  # a booking's or an order's code (`Κωδικός κράτησης: 85CDT0`)
    ("κράτησης", "παραγγελίας", "προϊόντος", "αποστολής")))
# Before `token`, words that make it an idempotency or change marker that APIs ask callers
# to send (AWS `ClientRequestToken`, `ChangeToken`, `LifecycleActionToken`) or an
# anti-forgery token a page hands to every browser (`csrf_token`, `authenticity_token`), not
# a credential; only for `token` (`changePassword(…)` sets a password, and `CSRF_SECRET`
# is the key that signs the anti-forgery tokens).
_MARKER_TOKEN = _words("request change lifecycle idempotency cancellation") | ANTI_FORGERY_WORDS
# The last word of a name after the keyword naming another field, whose value it is
# (`password change required user=…`, `PASSWORD_USER=…`)
_OTHER_FIELDS = _words("user username login host hostname ip email")
# Before the keyword, a word naming where a secret is kept does not make it a non-secret,
# nor `point` (a loyalty scheme's `POINT_AES_KEY`; a `key point` has it after).
_SKIP_BEFORE = _SKIP_WORDS - _words("store storage manager url uri reset point points message")
# (`MessagePassword="…"`: OpenTravel's credential attribute)
# words then a content hash of 32 hex digits or more: a cache's key (GitHub Actions'
# `key: Linux-pip-<sha256>`, `Cache saved with key: …`), named `key` but opening nothing
_CONTENT_KEY = re.compile(r"(?:[A-Za-z][A-Za-z0-9_.]*-){1,4}[0-9a-f]{32,128}")
# the word right before a key's name that says what the key does: the words before it say
# what it is used on (`FIELD_ENCRYPTION_KEY`, `HEADER_SIGNING_SECRET`), not that it is a name
_KEY_PURPOSE = _words("encryption encrypt signing hmac master aes cipher crypto jwt")
# a product named `…ID` (`BankID-passordet`, `AppleID_password`): its `ID` is no identifier's
_PRODUCT_ID = re.compile(r"[A-Z][a-z]+ID[-_]?")
# `pass` read on into another word: `PASSED`, `passing`, `passport`, `passenger`, `passive`,
# `passthrough` name no password
_PASS_WORD_TAIL = re.compile(r"(?i)(?:ed|es|ing|age|ages|enger|engers|port|ports|ive|able"
                             r"|through|thru)(?![a-z])")
# Words that make a quoted phrase a prompt or a label rather than a passphrase.
_PHRASE_HINTS = _words("your enter type please the a an required invalid must should "
                        # the same in the languages of an app's strings (`"Entrez votre mot
                        # de passe"`, `"Geben Sie Ihr Passwort ein"`, `"Introduzca su …"`)
                        "entrez saisissez votre veuillez geben sie ihr ihre ihren bitte "
                        "introduzca ingrese escriba digite sua seu inserisci inserire "
                        "voer uw wpisz podaj ange ditt indtast syötä")
_IDENTIFIER = re.compile(
    r"""^(?:[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+
        |[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+
        |[a-z]+(?:[_-][a-z]+)+
        |[a-z]+(?:[A-Z][a-z]+)+
        |(?:[a-z]+|[A-Z]+|[A-Z]?[a-z]+(?:[A-Z][a-z]+)*)[.!?:]?)$""",
    re.X,
)
# (`%(name)s`, `%10s`: printf fields, where `%Carrasco2083cos` is a password; `!Ref`,
# `!vault`: a YAML tag, letters only, where `!k8MuB2PJO3T` is a password;
# `0xdeadbeef`: a constant of 64 bits at most, where 40 hex digits are a key)
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:\*+|x{3,}\w*|\.{2,}|[-_=#]+|<.*>?|\[.*\]?|\$\{.*|\$\(.*|\{\{.*|\{.*\}
        |%(?:\(\w*\)|[-+\ \#0]{0,3}\d{0,3})s|\$[a-z_]\w*|\$env:[\w.]+|%[a-z_]\w*%|@[a-z_]+@
        |0+|1234\d*
        |null|none|nil|true|false|undefined|empty|unset|required|optional|string|str|int
        |redacted|hidden|masked|removed|filtered|omitted|scrubbed|sanitized|censored|elided
        |secret|password|passwd|pass|pwd|changeme|changeit|example
        |sample|dummy|fake|test|todo|tbd|placeholder|admin|root|user|username|guest|demo
        |motdepasse|mot_de_passe|mdp|secret123|password123
        |parol[aă]|senha|passwort|kennwort|contrase[nñ]a|wachtwoord|has[lł]o|heslo|salasana
        |jelsz[oó]|lösenord|adgangskode|passord|пароль|contrasenya
        |your(?:_\w*|[a-z]*)|my(?:_\w*|[a-z]*)|0x[0-9a-f]{1,16}|![a-z]+(?:\.[a-z]+)?
        |(?:[вb][аa]ш|votre|ihr|dein|uw|tu|su|seu|sua|tuo|tua)_\w+  # (`ВАШ_ПАРОЛЬ`, as the view
        # writes it: `BAШ_…`; `VOTRE_MDP`)
        |argon2(?:id|i|d)?|bcrypt|scrypt|pbkdf2\w*|sha-?(?:1|224|256|384|512)|md5|aes-?\d{3}\w*
        |base(?:16|32|58|64|85)|wpa[23]?(?:-(?:personal|enterprise|psk|eap|sae))*|wep|1password
        |ag[a-d][a-z0-9+/]{200,}={0,2}  # a SealedSecret's `encryptedData` (its cluster reads it)
        |(?P<owner>[a-z_][\w-]{0,31}):(?P=owner)  # a file's owner and group (`root:root`)
        |\d{4}-\d\d-\d\d(?:[t ][\d:.]+z?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|string\??
        |\d{1,2}-[a-z]{3}-\d{2,4}|(?:\d{1,5}\.)?\d\d:\d\d:\d\d)$"""
)
# (`my…`, `your…`: words, `my_password`, `yourapikey`; not `MynyddLas41`, `Mykonos2024`;
# change me, put here in other languages: `CAMBIAR_ESTO`, `A_REMPLACER`, `COLOCAR_AQUI`)
_PLACEHOLDER_PARTS = (*TEMPLATE_WORDS, "xxxx", "****", "••••", "●●●●", "_here",
                      "hier_eintragen", "change_me", "change-me", "cambiar", "cambiame",
                      "cámbiame", "remplacer", "a_changer", "ändern", "aendern", "alterar",
                      "wijzigen", "zmien", "colocar_", "poner_", "replace", "...", "some_",
                      "some-", "password", "%(", "(?")
# ... as one search (a generator of `in` tests costs ~1 µs a value; this runs for every
# password a keyword reads)
_PLACEHOLDER_PART = re.compile("|".join(map(re.escape, _PLACEHOLDER_PARTS)))
_DOLLAR_WORD_NUMBER = re.compile(
    r"\$[A-Z][a-z]{3,}(?:\d{2,}|\d[A-Z][a-z]{2,}|_[A-Z][a-z]{2,}\d)\W?")  # (`$Poznan3Poznan`)
# A printf field (`%s`, `%-20s`) ends where a letter or digit cannot follow it: in
# `gA5x1v2%sStjoG` the `%s` is part of a generated password.
_PRINTF = re.compile(r"%[-+ #0]{0,3}\d{0,3}s(?![A-Za-z0-9])")


_NAME_PARTS = re.compile(r"[\W_]+")


# what a log or a person writes around a placeholder word: `***REMOVED***`, `(hidden)`,
# Symfony's `!ChangeMe!`
_MARKS_AROUND = "*_-=#~.()[]<>{} !"


_BRACKETED_WORDS = re.compile(r"\([^\W\d_]+(?:[ \t][^\W\d_]+)*\)")


def _placeholder(v: str) -> bool:
    if v[0] == "$" and (_DOLLAR_WORD_NUMBER.fullmatch(v)
                        or len(_DIGIT_LETTER_TURN.findall(v)) >= 3):
        return False  # a password that starts with `$` (`$Atendimento5730`, `$Q3wqH9P5H74OX`),
        # not a variable (`$password`, `$DB_PASS`)
    if v.startswith("$ANSIBLE_VAULT"):
        return True  # a value Ansible Vault encrypted: safe to commit, by design
    if _PLACEHOLDER.match(v) or _BRACKETED_WORDS.fullmatch(v):
        return True  # (`(sin cambios)`, `(unchanged)`: what a form shows, no value)
    core = v.strip(_MARKS_AROUND)
    if core != v and core and _PLACEHOLDER.match(core) and not (
            core[0] == "$" and not core[1:].isupper() and not core[1:].islower()):
        return True  # (`$FAL730lke#` is a password, `**$VAR**` a variable)
    low = v.lower()
    return _PLACEHOLDER_PART.search(low) is not None or (
        "%" in v and _PRINTF.search(v) is not None) or template_ref(v)


# a part of a dotted value made of a capitalised word and 2 digits or more, as people make
# passwords (`Emlak4738.Bursa`, `Getah22.lad`); names glue them to more (`Gost28147_89_Key`)
_WORD_YEAR = re.compile(r"(?:^|\.)[A-Z][a-z]{2,}\d{2,}(?:\.|$)")


# Terraform's resource or data type ending where a secret word ends: the next string is the
# resource's name
_TF_TYPE = re.compile(r"""\b(?:resource|data)[ \t]+"[\w-]*$""")
# a password word as a value: a form's label in some language, not a password
_LABELS = frozenset(w for w in _PASSWORD_WORDS if " " in w or len(w) >= 6)
_MODIFIER_KEYS = "ctrl|alt|shift|cmd|win|super|option|opt|fn|strg|ctl"
_KEY_CHORD = re.compile(rf"(?i)(?:{_MODIFIER_KEYS})"
                        rf"(?:\+(?:{_MODIFIER_KEYS}|del|delete|entf|esc|tab|enter|[a-z0-9]"
                        r"|f\d{1,2}))+")
# a home directory: `~`, `~deploy`, `~/.pgpass`
_HOME_DIR = re.compile(r"~[\w.-]*(?:/.*)?")
_EMAIL_SHAPE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}")
_ACRONYM_SUFFIX = re.compile(r"[A-Z]{2,6}[-:][^\W\d_A-Z]{1,8}")


_NAME_BREAKERS = frozenset("!#%&*?^~")  # marks no variable's name holds
# one word in capitals that is no English word and a year or two digits (`PAMPA_97`,
# `SELE_1992`): a password; a constant's word is an English one (`SERVER_01` is a name)
_CAPS_YEAR = re.compile(r"[A-Z]{4,12}_(?:19|20)?\d\d")


def plausible_password(v: str, quoted: bool = False) -> bool:
    """A value worth treating as a password: not a placeholder, a name or a path. A quoted
    literal is a value, not a variable: it may be shaped like a name (`"hunter_2"`), from 4
    characters. One class of characters (`"hunter"`, `"hardcoded"`) is not enough: such a
    word is as often a label or a field name (measured: no recall gained, more false
    alarms on code)."""
    worded = "." in v and _WORD_YEAR.search(v) is not None  # `Emlak4738.Bursa`
    if (v.isalpha() or v.isdigit()) and keyboard_walk(v):
        return not _placeholder(v)  # (one class of characters, yet no name: `mnbvqwerzxcv`)
    if quoted:
        if len(v) < 4 or _placeholder(v) or (dotted_name(v) and not digit_count(v)):
            return False
    elif len(v) < 6 or (v[0] == "_" and char_classes(v) < 4) or _placeholder(v) or (
            _IDENTIFIER.match(v.rstrip(":")) and not ("." in v and v[-1].isdigit())
            and not passphrase(v) and not worded
            and not (_CAPS_YEAR.fullmatch(v) and not wordish(v[:v.index("_")]))
            and not ("." in v and len(v) >= 16 and random_token(v, 16))):
        return False  # a name (`Change.Me.Now1`, a dotted value ending in a digit, is not;
        # nor a generated passphrase, `renard-citron-lumiere-nuage`, nor a capitalised word
        # and a number as a part, `Emlak4738.Bursa`, nor random parts, `Rq_4kT7wP.Zu3.meeV`)
    elif ("_" in v or "." in v or "-" in v) and v[-1].isalpha() and name_like(v) and not worded \
            and _NAME_BREAKERS.isdisjoint(v):
        return False  # `PGresult_ptr`, `sigv4_auth_cls`: a variable (`Welcome_2024` is not,
        # nor words with a mark no name holds, `Dryer#Line3-temps`)
    if v[0] == "/" or v.startswith(("./", "http", "file:", "@/", "@./", "@~/")) or "://" in v:
        return False
    if "@" in v and _EMAIL_SHAPE.fullmatch(v):
        return False  # an e-mail address (`Email for the pass: nina.b@gmail.com`)
    if ("-" in v or ":" in v) and _ACRONYM_SUFFIX.fullmatch(v):
        return False  # an acronym with a case ending (Hungarian `SMS-ben`, Finnish `PDF:nä`)
    if v[0] == "~" and _HOME_DIR.fullmatch(v):
        return False  # a home directory (`~/.pgpass`, `~deploy`), not `~PA1vd%kUd^mev`
    if not quoted and _EXPRESSION.search(v):
        return False  # minified code: `passwordVerification:m&&P&&p>>8` (in quotes a string:
        # `PGPASSWORD='efR&IOa1&L&&DJrC%V'`)
    return char_classes(v) >= 2 or v.isdigit()


# each key's row and column on a QWERTY keyboard (digits, then the three letter rows)
_KEY_AT = {c: (row, col) for row, keys in enumerate(("1234567890", "qwertyuiop", "asdfghjkl",
                                                     "zxcvbnm")) for col, c in enumerate(keys)}


def keyboard_walk(v: str) -> bool:
    """Keys walked along a keyboard's rows or columns, one class of characters, as people
    make passwords (`mnbvqwerzxcv`, `qazwsxedc`): 8 characters or more, three pairs in four
    of neighbouring keys (a word's letters are neighbours about one pair in five)."""
    low = v.lower()
    if len(low) < 8 or not all(c in _KEY_AT for c in low):
        return False
    misses = (len(low) - 1) // 4  # (at most one pair in four apart: most values stop early)
    for a, b in zip(low, low[1:], strict=False):
        (r1, c1), (r2, c2) = _KEY_AT[a], _KEY_AT[b]
        if abs(r1 - r2) + abs(c1 - c2) != 1:
            misses -= 1
            if misses < 0:
                return False
    return True


def _bare_value(v: str) -> bool:
    """A value named with no operator must look like one: a digit, a lower-case letter, no
    hyphen unless it mixes all four kinds of character or is a passphrase (`Welcome123`,
    `53KAYAK-noodle`, `zephyr-marble-lagoon-pepper21`, `lantern-orbit-pebble-marble`, not a
    log's next field, `attempt=3`, nor
    `SHA-256`, `COVID-19`, `WPA2`, `x86-64`); or letters whose case flips at random. In capitals
    only, 8 characters or more whose digits and letters alternate as a generator's do
    (`7EH8TMTJ`, not `ISO27001`, `RTX4090`), or a word, a symbol and a number as people
    make them (`CARRARA#1964`)."""
    return (("-" not in v or char_classes(v) >= 4 or passphrase(v)
             or _WORDS_NUMBER.fullmatch(v) is not None)
            and (v != v.upper() or (len(v) >= 8 and (len(_DIGIT_LETTER_TURN.findall(v)) >= 3
                                                     or _CAPS_SYMBOL.fullmatch(v) is not None)))
            and (digit_count(v) > 0 or case_random(v) or passphrase(v) or _cased_symbolic(v)
                 or (KEYBOARD_WALK.search(v) is not None and not v.isalpha()))
            and not assignment(v)
            and _NOT_TOLD_LOWER.fullmatch(v.lower()) is None)  # (`password sha256`, `t8ayar?`)




def _cased_symbolic(v: str) -> bool:
    """Both cases and a symbol no name holds, in 8 characters or more (`AdquNoQpxw@`)."""
    return (len(v) >= 8 and not _SYMBOLS.isdisjoint(v) and v != v.lower()
            and v != v.upper())


_CAPS_SYMBOL = re.compile(r"[A-Z]{3,}[!@#$%&*+?]{1,2}\d{2,6}[!@#$%&*+?]?")
_DIGIT_LETTER_TURN = re.compile(r"(?<=\d)[A-Z]|(?<=[A-Z])\d")
# three words or more joined by hyphens, a number glued to the last: a passphrase as people
# make them up (`blå-måge-tårn13`), not a name (`x86-64`, `COVID-19`, `re-run-step`)
_WORDS_NUMBER = re.compile(r"(?:[^\W\d_]{3,}-){2,7}[^\W\d_]{3,}-?\d{1,4}[!?#*$%&@+]?")


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# publishable keys' formats (`pk_live_…`, Mapbox's public `pk.eyJ1…`, `pub-c-…`, `sub-c-…`,
# `xnd_public_…`, `phc_…`)
_PUBLIC_VALUE = re.compile(
    r"pk_(?:live|test)_|pk\.eyJ1|(?:pub|sub)-c-|[a-z]+_public_|phc_|sb_publishable_|(?:Mid-)?client-"
    r"|rzp_(?:live|test)_"  # (Razorpay's key id: its checkout page carries it)
    r"|(?:live|test)_g?ck_"  # (Toss Payments' client key: its payment widget loads it)
    r"|age1[02-9ac-hj-np-z]{58}$")  # (age's recipient: its public key)


# Adyen's client key: public by design, its web Drop-in loads it in every browser
_ADYEN_CLIENT_KEY = re.compile(r"(?:live|test)_[A-Z0-9]{32}")


def _mixed(v: str) -> bool:
    """Letters with a digit or a symbol: `Welcome123`, `S3tterPw`, not `protected`; or
    letters whose case flips at random (`YXNkZmZmZmZm_HARDcoded`)."""
    return any(ch.isalpha() for ch in v) and (
        (not v.isalpha() and not _words_only(v)) or case_random(v))


# A regular expression, not a value: an escape, a class with a range, a count, an anchor.
_REGEX = re.compile(
    r"\\[dwsDWSbB.]|\[[^\]]{0,40}\w-\w\]|\{\d+(?:,\d*)?\}|^\^.*\$$|\(\?[:=!<P]|\.[*+]")
_SYMBOLS = frozenset("!@#$%^&*()[]{}<>?~+=|;,")


def _generated_password(v: str, quoted: bool) -> bool:
    return plausible_password(v, quoted) and _symbolic(v)


def _symbolic(v: str) -> bool:
    """A generated password kept under a secret's name (`F&mSmKZBERA!cL`,
    `m{{h}o)p${e]nob(…`), which `plausible_secret` does not read as random (no digit, case
    not random): letters with two kinds of symbol or more, and both cases or digits too, or
    four kinds of symbol in 16 characters; not a regular expression."""
    kinds = _SYMBOLS.intersection(v)
    if len(v) < 10 or len(kinds) < 2 or not any(c.isalpha() for c in v):
        return False
    if _REGEX.search(v) or _SNAKE_WORDS.search(v) or (
            "&" in v and _QUERY_OR_ENTITY.search(v)):
        return False  # a regular expression, names, a query string or HTML
    if kinds & _BRACKETS and _balanced(v):
        return False  # code: `{lookup_key[1]}`, `Jobs[-1].JobId`, `f"{uuid4()}"`
    return char_classes(v) >= 3 or (len(kinds) >= 4 and len(v) >= 16)


# a field of a format string or an f-string: `{uuid4()}`, `{user.id}`, `{keys[0]}`
_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][\w.]+(?:\([^(){}]{0,32}\)|\[[^\[\]{}]{0,32}\])?\}")
# names joined by `_` (`PyTuple_Type`), a member read (`r.C0.ESC`)
_SNAKE_WORDS = re.compile(r"[A-Za-z]{2,}_[A-Za-z]{2,}|[A-Za-z_$][\w$]*\.[A-Za-z_$]")
_QUERY_OR_ENTITY = re.compile(r"&[\w.\[\]-]{1,40}=|&#?\w{2,8};")
_BRACKETS = frozenset("()[]{}")
_CLOSER = {")": "(", "]": "[", "}": "{"}


def _balanced(v: str) -> bool:
    """Every bracket of `v` closes the last one opened, as in code; a generated password's
    brackets seldom do (`m{{h}o)p${e]nob(…`)."""
    stack: list[str] = []
    for ch in v:
        if ch in "([{":
            stack.append(ch)
        elif ch in _CLOSER and (not stack or stack.pop() != _CLOSER[ch]):
            return False
    return not stack


def _words_only(v: str) -> bool:
    return all(ch.isalpha() or ch in "-_." for ch in v)


_NAME_VALUE = re.compile(r"[A-Za-z_][\w.]*")
# Code, not a value: a logical or strict comparison operator, or member accesses joined by
# an operator (`n.key!==D.C0.CR`, `e.altKey?r.C0.ESC+r.C0.CR:r.C0.CR`). Linear: each try
# starts at a dot and reads one word.
_EXPRESSION = re.compile(r"&&|\|\||[!=]==|\.[A-Za-z_$]\w*[-+?:*][A-Za-z_$]\w*\.\w")
# A relative path to a file: directories and a name with an extension.
_FILE_PATH = re.compile(r"(?:[\w.-]+/)+[\w.-]+\.[A-Za-z][A-Za-z0-9]{1,4}")
_DIGEST_PREFIX = re.compile(r"(?i)(?:sha-?\d{0,3}|md5|blake2[bs]?|b3)[:-]")


_AUTH_PART = re.compile(r"(?:^|[-_/])auth(?:[-_/]|$)")


def plausible_secret(v: str, quoted: bool = False) -> bool:
    """A random-looking value: long enough, letters and digits, enough entropy for its
    length (a 12-character random string cannot reach gitleaks' 3.5 bits). In quotes, a
    string: an operator in it is no code's (`'Hv&&I2DRn7LVhvfW'`)."""
    n = len(v)
    if n < 12 or _placeholder(v) or placeholder_token(v) or sample_basic(v):
        return False
    if _IDENTIFIER.match(v.rstrip(":")) and not _random_part(v):
        return False  # a name; not a dotted token with a random part (`s.ZC9Ecf4M5g…`)
    if v[0] in "/~_(" or v.startswith(("./", "http", "file:", "arn:", "urn:", "tag:")):
        return False
    if "auth" in v and _AUTH_PART.search(v):
        return False  # an object's name (Asterisk's `InAuth: 2143-auth/2143`), not a token
    if _DIGEST_PREFIX.match(v) or v.startswith(PUBLIC_BASE64):
        return False  # `The key fingerprint is SHA256:47DEQ…`, a host's public key
    if (not quoted and _EXPRESSION.search(v)) or _FILE_PATH.fullmatch(v) or _REGEX.search(v) or (
            "{" in v and _FORMAT_FIELD.search(v)):
        return False  # minified code (`r.C0.ESC+o.key`), a file's path (`app/v2-stage.war`),
        # a regular expression (`^[a-z0-9]{32}$`), a format string (`retry-{uuid4()}`)
    if "://" in v or v.lower() == v.upper() or not (digit_count(v) or case_random(v)):
        return False  # letters (some character with a case) and digits, or random case
    return not below_entropy(v, min(entropy_floor(v, 3.5), math.log2(n) - 0.7)) and not (
        name_like(v))


def _random_part(v: str) -> bool:
    """A dotted value with a part only a machine wrote (`s.ZC9Ecf4M5g9o34Q6RkzGsj0z`): 16+
    characters of both cases and digits, no `_` (not `winreg.KEY_WOW64_64KEY`)."""
    return "." in v and not dotted_name(v) and any(
        len(p) >= 16 and "_" not in p and p != p.lower() and p != p.upper()
        and digit_count(p) >= 2 for p in v.split("."))


_SASL_PROMPTS = frozenset(("VXNlcm5hbWU6", "UGFzc3dvcmQ6"))


def _bearer_ok(v: str) -> bool:
    return not _placeholder(v) and entropy(v) >= 3.0 and (
        any(ch.isdigit() for ch in v) or len(v) >= 24) and not (
        v.startswith("eyJ") and public_jwt(v))


def _basic_ok(v: str) -> bool:
    text = b64_text(v)
    user, sep, pw = text.partition(":")
    return bool(sep) and len(pw) >= 3 and not _placeholder(pw) and not sample_credentials(text)



def url_password_ok(v: str, user: str) -> bool:
    """A URL's password worth reporting: not a placeholder nor a default login
    (`postgres:postgres@`, `…:1111@`)."""
    return (len(v) >= 3 and not _placeholder(v) and v.lower() not in {"token", "pass", "pw"}
            and not default_login(user, v))


def _detector(kind: str) -> str:
    """The detector a keyword's kind reports under: a password's, or a generic secret's (an
    API key, a token, a key)."""
    return "password" if kind == "password" else "generic_secret"


def scan_local(text: str, kind: str, pos: int, out: list[Hit], enabled: frozenset[str],
               taken: Callable[[int, int], bool] | None = None) -> None:
    """One anchored match after a secret-like keyword that ends at `pos` (exclusive).
    `taken(start, end)`: the span overlaps a finding that wins over this one (a rule's), so
    the value is not checked."""
    if kind == "wifi_code":
        if not (_wifi_before(text, pos) or _WIFI_AFTER.match(text, pos)):
            return
        kind = "password"  # `Wi-Fi … hedder VHK-Crew-2G, koden er …`: the network's password
    if kind == "sql_column":
        if "password" in enabled:
            _sql_insert(text, pos, out)
        return
    if kind == "url":
        if "url_password" in enabled:
            m = _URL.match(text, pos) or _URL_SLASHED.match(text, pos)
            if m is not None and m.group("v").lower() != _TOKEN_PASSWORD:
                if url_password_ok(m.group("v"), m.group("user")):
                    out.append((m.start("v"), m.end("v"), "url_password"))
                return
            m = _URL_TOKEN_USER.match(text, pos)  # GitHub: a token as the user name
            if m is not None and _PUBLIC_DSN.match(text, m.end()):
                return  # a Sentry DSN's key: public by design (browsers send it)
            if m is not None and not placeholder_token(m.group("u")) and (
                    m.group("basic") is not None  # the fixed password says it is a token
                    or random_token(m.group("u"), 20) or long_hex(m.group("u"))):
                out.append((m.start("u"), m.end("u"), "url_password"))
        return
    if kind in ("bearer", "basic"):
        if "bearer_token" in enabled:
            m = _BEARER.match(text, pos)
            if m and (_bearer_ok(m.group("v")) if kind == "bearer" else _basic_ok(m.group("v"))):
                out.append((m.start("v"), m.end("v"), "bearer_token"))
        return
    # (each look-behind regex only where its literal is: `re` tries one at every position)
    lo = max(0, pos - 80)
    if text.find("://", lo, pos) >= 0 and _USERINFO_BEFORE.search(text, lo, pos):
        return  # a URL's user name (`https://x-access-token:…@host`): the URL reader's
    if _in_arn(text, pos) or _in_template_pipe(text, pos) or _in_expansion(text, pos):
        return
    lo = max(0, pos - 48)
    if text.find('"', lo, pos) >= 0 and _TF_TYPE.search(text, lo, pos):
        return  # Terraform's resource type (`resource "random_password" "db"`): a name follows
    if kind == "secret" and _wifi_before(text, pos):
        kind = "password"  # `Wi-Fi : réseau « X », clé : …`: the network's key, a password
    if kind == "password" and text[max(0, pos - 9):pos].lower() == "1password":
        return  # the password manager's name (`see 1Password "BMS-LON1"`: an entry's name)
    if kind == "password" and text.startswith(" for ", pos) and text[
            max(0, pos - 17):pos].lower().endswith(("failed password", "accepted password")):
        return  # sshd's log (`Failed password for invalid user admin from 2c0f:…`)
    if kind in ("password", "apikey"):
        _compared_before(text, pos, kind, out, enabled)
    _byte_array(text, pos, kind, out, enabled)
    if _detector(kind) in enabled:
        _dump_rows(text, pos, kind, out)
    if kind == "password" and "password" in enabled:
        _column(text, pos, out)
        _sql_insert(text, pos, out)
    elif kind == "apikey" and "generic_secret" in enabled:
        _column(text, pos, out, token=True)  # `| Integration | Env | Token |`
    elif (kind == "secret" and "password" in enabled
          and text[max(0, pos - 12):pos].lower().endswith(_CREDENTIAL_HEADS)):
        _column(text, pos, out)  # `| System | Account | Credential | Notes |`: passwords
    elif kind == "secret" and "generic_secret" in enabled and text[
            max(0, pos - 3):pos].lower() == "key" and (pos == 3 or text[pos - 4] in "|;,\t\n"):
        _column(text, pos, out, token=True)  # `SerialNo;MeterType;Key`: a meter's AES key
        # (a column named `Key` alone; not `customer_key`, a pseudonym's hash)
    if kind in ("apikey", "secret") and "generic_secret" in enabled:
        _sql_insert(text, pos, out, kind)  # (`api_secret` in a dump's column list)
    if taken is not None and _next_taken(text, pos, taken):
        return
    # (no quote in reach: `_QUOTED` cannot match; its name part, operator and call prefix
    # span 250 characters at most, 27 in every text of the bench data)
    reach = text[pos:pos + _QUOTE_REACH]
    m = _QUOTED.match(text, pos) if '"' in reach or "'" in reach or "`" in reach else None
    if m is None and kind != "password" and ('"' in reach or "'" in reach or "`" in reach):
        m = _QUOTED_LONG.match(text, pos)
    ahead = reach[:64] if m is None else ""
    if m is None and ("«" in ahead or "“" in ahead or "„" in ahead):
        m = _QUOTED_MARKS.match(text, pos)
    if m is not None and (m.group("bare") is not None and (kind != "password"
                                                           or m.group("mid"))
                          and not _C_DEFINE.search(text, max(0, pos - 64), pos)
                          or _joined(m.group("v"))):
        m = None  # `password "…"` (Gradle, prose) only right after a password word
    quoted = m is not None
    if m is not None and "q" in m.re.groupindex and _psql_variable(text, m.start("q"),
                                                                   m.group("v")):
        return  # psql's variable, set with `-v` (`CREATE ROLE … PASSWORD :'report_pwd';`)
    # A phrase is a passphrase only under a password word: `key 'any other'` is prose.
    spaced = m is not None and " " in m.group("v")
    if spaced and kind != "password":
        return
    strict = False  # a call argument or a bare word: only a value that cannot be a name
    if m is None:
        m = _TAIL.match(text, pos)
        if m is None and text[pos:pos + 1] == "=" and text[_name_start(text, pos) - 1:pos][:1] in (
                "?", "&") and (amp := text.find("&", pos)) != -1:
            m = _TAIL.match(text, pos, amp)  # a query string's value ends at the next
            # parameter, whatever that holds (`?wstoken=…&values[0]=…`)
        if m is not None and (". " in m.group("mid")
                              or ("(" in m.group("mid") and kind != "password"
                                  and not _ENCODING_ASIDE.search(m.group("mid")))):
            m = None  # its operator is another sentence's: the readers below may read a value
            # (an aside in brackets only after a password's name: `Chave PIX (aleatória):
            # <uuid>` is a public key)
        if m is not None and text[m.end("v"):m.end("v") + 1] in _CLOSERS:
            mb = _TAIL_BRACKETS.match(text, pos)  # `SECRET_KEY=8@zp41n_))lc3r*m@-fy…`: the
            # brackets of a generated value, read to its end
            if _generated_value(mb) and mb.group("v")[len(m.group("v")):].strip(")]}"):
                m = mb  # (not a value that only closes a bracket: `${PW:-Xk92!mLpq7}`)
        if m is None and _BRACKET.match(text, pos) is not None:
            m = _TAIL_BRACKETS.match(text, pos)
            if not _generated_value(m):
                m = None  # `to …`; `itemgetter(1))`, `0}).merge(`: code
        if m is not None and m.group("to") is not None:
            strict = True  # `changed my password to Welcome123`: a value, not `to login`
            # (and `should be`, `will be`)
            if not _bare_value(m.group("v")):
                # `to` began a clause (`Password to open it: …`): its own operator may follow
                m = _TAIL.match(text, m.end("to"))
                if m is None or m.group("to") is not None or ". " in m.group("mid"):
                    m = None
                else:
                    strict = False
        if m is not None and kind == "password" and _value_before_operator(m):
            m = None  # `şifre Dostluk510 – büyük harf`: the bare reader reads the value
    if m is None:
        m = _CALL.match(text, pos)
        mid = m.group("mid") if m is not None else ""
        if m is not None and (("." in mid and not _COMPARE_METHOD.fullmatch(mid))
                              or (mid and not mid.isdigit() and "(" not in m[0])
                              or (_COMMA_FORM.match(m[0]) and m.group("v6") is None
                                  and not _first_argument(text, pos)
                                  and not _last_pair(text, pos, m.end())
                                  and not _FLAG_NAME.search(text, max(0, pos - 48), pos)
                                  and not _key_value_row(text, pos, m, kind))
                              or (m.group("v5") is not None and not _compare_call(text, pos))):
            m = None  # `password.encode("…")`, `("username", "password", "email2")`
        if m is None and kind in ("password", "apikey"):  # `api key Xv2Lp9…`, not `key …`
            m = _BARE.match(text, pos)
            if m is not None and (not _bare_value(m.group("v").rstrip(".")) or (
                    m.group("of") is not None and char_classes(m.group("v")) < 3)):
                m = None  # `password SHA-256`, `password WPA2`: a term, not a password
        # a call argument or a bare word, but not a setting's value (`key="ApiKey"
        # value="…"`, `<name>…</name><value>…`, `name:`/`value:`), as explicit as `=`
        strict = m is None or _SETTING_VALUE.search(m[0]) is None
    if m is None or _skipped(text, pos, m.group("mid")):
        return
    if ". " in m.group("mid"):  # `keybindings.json. Examples: "…"`: another sentence
        return
    if _FLAG_IN_MID.search(m.group("mid")):  # `--secret=db-password --project=…`: the value
        return  # is another option's
    g = _value_group(m)
    v = m.group(g)
    end = m.end(g)
    if kind != "password" and _CONTENT_KEY.fullmatch(v):
        return  # a cache's key: words and a content hash (`Linux-pip-ddb75a86…`), no secret
    # in a query string (the name after `?` or `&`) the next parameter ends the value; in
    # prose or a file a password may hold `&b_=` (`رمز عبور: H$h@6_&b_=Ez`)
    start = _name_start(text, pos)
    cut = _NEXT_PARAM.search(v) if "&" in v and text[start - 1:start] in ("?", "&") else None
    if cut is not None:  # (the value checked is the cut one: `token=***&da=…` is masked)
        v, end = v[:cut.start()], m.start(g) + cut.start()
    elif (len(v) > 6 and v[-1] == "." and v[-2] != "."
          and (end == len(text) or text[end].isspace())):
        v, end = v[:-1], end - 1  # the sentence's full stop (`parola este JCF805khd. Vă rog`)
    if taken is not None and taken(m.start(g), end):
        return
    if len(_UNSPACED_SCRIPT.findall(v, 0, 8)) >= 2:
        return  # a sentence in a script written without blanks, read to the next blank
        # (`パスワードは別のメールでお送りします。`), not a value
    if _KEY_CHORD.fullmatch(v):
        return  # keys pressed together (`Сменить пароль: Ctrl+Alt+Del → …`)
    if v.lower() in _LABELS:
        return  # the word itself, a label's translation (`"login.password": "Mot de passe"`)
    if spaced:  # (after `:` or `=` a pair of words is a value; after `is`, a quotation)
        ok = plausible_phrase(v, explicit=any(c in text[pos:m.start(g)] for c in ":="))
    elif g in ("v4", "v7"):  # a literal default of a secret's variable: `getenv("X", "…")`,
        # `ENV['X'] || "…"`, `{{ env "X" | default "…" }}`, `{{ default "…" .Values.x }}`
        env = (_name_words(m.group("env"), len(m.group("env")), "") if g == "v4"
               else [w.lower() for w in _CAMEL_WORDS.findall(m.group("env7") or "")
                     if w.lower() not in _ENV_READ_WORDS])
        # (a secret's default may be a word with a digit, as a password's: `GEHEIMN1S`)
        ok = not _SKIP_WORDS.intersection(env) and (
            _literal_ok(v, kind) or (kind != "password" and _literal_ok(v, "password")))
    elif strict:
        ok = (plausible_password(v) and (_mixed(v) or passphrase(v)) if kind == "password"
              else (plausible_secret(v, quoted) and (random_token(v, 16) or long_hex(v)
                                             or (len(v) >= 16 and case_random(v))))
              or (len(v) >= 16 and _generated_password(v, quoted))
              # an API key's name passed with a UUID (`setCapability("accessKey", "8c0b…")`)
              # or a key in one case (`Headers.Add("X-Api-Key", "lgx_live_5gwgv820…")`)
              or (kind == "apikey" and (_UUID.fullmatch(v) is not None
                                        or random_one_case(v))))
    elif kind == "password":
        ok = plausible_password(v, quoted) and not (
            v.isalpha() and any(d in text[m.end("mid"):m.start(g)] for d in "—–"))
        # (a title's dash before a word: `POLÍTICA DE PALAVRAS-PASSE — Direção de …`)
    else:  # (a UUID under an API key's or a secret's name: `API Secret Key: 8e36b6b6-…`)
        ok = (plausible_secret(v, quoted) or _generated_password(v, quoted)
              or (kind == "apikey" and _UUID.fullmatch(v) is not None))
    if ok and _NAME_VALUE.fullmatch(v) and _name_at(text, pos) == v:
        ok = False  # the name passed as its own value: `allow_s3_credential_exposure=allow_s3_…`
    if ok and v.startswith("eyJ") and public_jwt(v):
        ok = False  # Supabase's `anon` key: public by design
    if ok and v.endswith("=") and base64_only(v):
        decoded = decoded_text(v)  # `UkVQTEFDRV9NRQ==`: base64 of `REPLACE_ME`, a template's
        ok = decoded is None or not _placeholder(decoded)
    if ok and v in _SASL_PROMPTS:
        ok = False  # base64 of `Username:` and `Password:`: SMTP's AUTH LOGIN prompts in a log
    if ok and _PUBLIC_VALUE.match(v):
        ok = False  # a publishable key: `key: 'pk_live_…'` (Stripe, Paystack, Clerk), PubNub's
        # `publishKey: "pub-c-…"`, `…_public_…`: written into the pages a browser loads
    if ok and _ADYEN_CLIENT_KEY.fullmatch(v) and text[max(0, pos - 9):pos].lower() in (
            "clientkey", "client_key"):
        ok = False  # Adyen's client key (`clientKey: 'live_…'`): the Drop-in's, public
    detector = _detector(kind)
    if ok and detector in enabled:
        out.append((m.start(g), end, detector))


# --- a password told somewhere in its clause ---------------------------------------------
#
# The readers above know the grammar of a value's name (an operator, a copula, a verb of
# change, in many languages); people also write a password several words after its name, in
# forms no list holds (`parola pentru acces nesupravegheat am pus-o Varna-5062!`, `Pasword em
# Rabaul-604# tasol`, `password accesso HMI Cretaz653%`). `told_nearby` reads the rest of the
# password word's clause for the first word shaped as people make passwords: letters with
# digits or symbols, 6 to 64 characters, and none of the shapes such a clause also holds
# (`_told`). It only fills a gap: its finding is kept where no reader or rule found a value
# within reach after the word, and loses every overlap (`TOLD_PRIORITY`). Shaped on blind
# rounds 1-195 (61 of their 468 missed secrets found, no look-alike of 11,871 newly flagged);
# on five rounds written after its draft (196-202, before any tuning on them): 6 of their 24
# misses found, 1 of 300 look-alikes newly flagged.

_CLAUSE_END = re.compile(r"[.!?](?:\s|$)|[。！？\n]|\s[-–—]\s")
_TOLD_WORD = re.compile(r"[^\s。，、]+")
TOLD_REACH = 100  # characters after the password word
# Past the clause's end, to the end of its paragraph (a blank line, or the joint of two
# texts), a word that could not be anything else (`_far`) is read too, unless the text
# between gives examples: measured on blind rounds 1-211, 35 of their 428 missed secrets
# found, no look-alike of 12,831 newly flagged (without the examples' test, 6 flagged).
TOLD_FAR = 200
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n|\x00")
_EXAMPLES = re.compile(
    r"(?i)e\.g\.|z\. ?b\.|p\. ?ex\.|for (?:example|instance)|such as|\bexamples?\b|beispiel"
    r"|exemple|ejemplo|esempio|contoh|\blike\b|\bthan\b|reject|not allowed"
    # (German's `wie` (like), not Dutch's `wie weet …` (who knows))
    r"|\bwie\b(?![ \t]+(?:weet|heeft|kent|is|had|kan|wil|was|heb)\b)"
    r"|nicht erlaubt|\bavoid|\bnever\b|\bbanned|strongest|weakest|which of these")
_GLUED = frozenset("_-./:=\"'`([{<>@$")  # right after the word: a name or an operator
_CODE_MARK = re.compile(r"[|{}<>=]")  # before the value: a template, markup, an assignment
_NOT_IN_TOLD = frozenset("=([{}$/`\\<>|:'’\"")  # code, JSON, a path, a time, a word's
_TOLD_SYMBOLS = frozenset("!@#%^&*+?~")
# what a password-shaped word holds: a digit or one of those symbols
_TOLD_MARK = re.compile("[\\d" + re.escape("".join(sorted(_TOLD_SYMBOLS))) + "]")
# what else a clause about a password holds, letters and digits mixed
_NOT_TOLD = re.compile(r"""
    \d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}-[A-Za-z]{3}-\d{2,4}  # dates
    |[vV]?\d+(?:\.\d+){1,3}[a-z]?  # versions
    |[A-Z0-9]+(?:[-.][A-Z0-9]+)*|[A-Z]{2,}[-_\#]?\d[\d-]*  # codes in capitals (a booking)
    |[\d,.+\-–%€$£()]+  # numbers and amounts
    |\d+[-‑]\D+|\d+[a-z]?-[a-z]+  # `6-digit`, `3e-couleur`
    |[a-z]{2}(?:-[a-z]+)+-\d|[a-z]+(?:-[a-z]+)+-0\d  # a cloud region, a host (`bld-legacy-02`)
    |[A-Za-z]+(?:\+[A-Za-z]+)+  # `Ctrl+Alt+Del`
    |[a-z]+(?:\.[a-z]+)+\d*  # a user's name (`tec.mty02`)
    |[A-Z]?[a-z]+\d  # a model (`Galaxy Tab Active4`)
    |[0-9a-f]{8,}  # a hash or a part of one (`sha1 "6f2a7a3c"`)
    |\w*\d(?:Field|Input|Label|Button|Box|Text|Name|Id|Type|Value|Form|Hash|Salt|Key|Token
      |Policy|Error|Prompt|Hint|Reset|Length|Check|Rule|Change)[A-Za-z]*  # a name going on
    # after its digits (`Password123Field`; not a password of two words: `Poni7012Gaoua`)
    |[a-z]*[235789][a-z]*|[a-z]+\d[a-z]+  # Arabic in Latin letters (`3amalt`, `et8ayar`)
    """, re.X)
_NOT_TOLD_LOWER = re.compile(r"""
    .*(?:1password|://).*|www\..*|tr0ub4dor&3  # the password manager, a URL, XKCD's example
    |(?:0x|utc|gmt).*|[0-9a-f]{8}-[0-9a-f]{4}.*  # a hex literal, a time zone, a UUID
    |(?:pbkdf2|argon2|b64)\w*|sha-?\d+|md5|aes-?\d+\w*|bcrypt|scrypt|rsa-?\d*|wpa\d?(?:-\w+)?
    |ed25519|x25519|base64(?:[-_]?[a-z]+)?|utf-?8  # algorithms and encodings (`base64-encode`)
    |x86[-_]64|aarch64|amd64|arm64|win(?:32|64)|i[3-6]86|ppc64\w*|s390x  # architectures
    |.*\.(?:xlsx?|docx?|pdf|txt|csv|json|ya?ml|kdbx|zip|png|jpe?g|pptx?|log|conf|cfg|ini)
    |.*[-_ ](?:5|2\.4|2)g(?:hz)?  # a Wi-Fi network's name (`MTN-Staff-5G`)
    |t(?:8|3'|gh)ay+ar[?!.]*  # Arabizi's changed (`el wifi password t8ayar?`)
    """, re.X)
_DOTTED = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_HOST = re.compile(r"[^@]*[-.][^@]*")
# a password manager or vault named before the word: the clause says where the password is
_KEPT_IN = re.compile(r"1password|bitwarden|keepass|lastpass|dashlane|passbolt|cyberark|vault",
                      re.I)
# … then a copula: the password told is the manager's (or the vault's) own
_KEEPER_IS = re.compile(r"[\"'”’]?[ \t]+(?:is|was)(?:[ \t]+now)?[ \t]")
# a user's name follows these (`for user bob123`, `brukernavn akutt-triage2`)
_USER_WORDS = frozenset(("user", "username", "login", "account", "utilisateur", "usuario",
                         "usuário", "benutzer", "benutzername", "utente", "gebruiker",
                         "brukernavn", "användare", "użytkownik", "kullanıcı", "id"))
# a shell's prompt (`$ gcloud … reset-password creds-name-1`, `C:\p4> p4 …`; not `> `, a quoted
# e-mail's)
_COMMAND_LINE = re.compile(r"[ \t]*(?:[$%#][ \t]|PS[ >]|[A-Z]:\\)")
_OPTION = re.compile(r"[ \t]--?[A-Za-z]")  # an option before the word (`--reset-password`)
TOLD_PRIORITY = 4  # (the keyword-local readers' is 3)


# the password word of Turkish and Azerbaijani, then a possessive or a case's ending
# (`şifreniz`, `şifresi`, `şifrəsi`, `parolanız`) before a blank; the word's last five
# letters (`arola`: `parola`), as `told_nearby` reads them
_TURKIC_STEMS = frozenset(("şifre", "sifre", "şifrə", "arola"))
_MARKED_ENDING = re.compile(r"['’][^\W\d_]{1,5}(?=[ \t])|-(?:nya|ny|neun|eun|nun|un)(?=[ \t])")
_TURKIC_SUFFIX = re.compile(r"(?:niz|nız|miz|mız|sini|sı|si|ni|yi|m|n)(?=[ \t])")


# a chat's next line holding one word (after a dash, a time or a name and a colon, maybe a
# copula)
_ANSWER_LINE = re.compile(
    r"[ \t]*(?:[-–—>*•][ \t]*|\[[^\]\n]{1,24}\][ \t]*)?(?:[^:\n]{1,30}:[ \t]*)?"
    r"(?:(?i:it['’]?s|is|es|é|da|na|ni)[ \t]+)?"  # (a copula: Belizean Kriol's `da Belikin2024!`)
    r"(?P<v>\S{6,64}?)[.!]?[ \t]*(?:\n|$)")


# past a clause's end, what goes on telling the password, by the end's mark (a line's end is
# read as a dash): after a dash (`it asks for an admin password — ours is 689485`, `спросит
# пароль контейнера — ввести 27723310`: enter …), the next sentence telling it as what it is now
# (`A senha do wifi mudou ontem. Agora é soja-safrinha-2025`); the end does not end the clause
_DASH_TELLS = re.compile(r"(?i)(?:ours|mine|it['’]s|it[ \t]+is|the[ \t]+new[ \t]+one[ \t]+is"
                         r"|enter|type|" + "|".join(viewed_words(("ввести", "введите"))) + r")\b")
_TELLS_PAST = {
    "": _DASH_TELLS,
    # (after a dash, the value itself too: `пароль від вайфаю на складі — wawel.mokotow18$`)
    **dict.fromkeys(("-", "–", "—"), re.compile(
        _DASH_TELLS.pattern + r"|(?=[^\s\d]{0,40}\d\S*(?:\s|$))", re.I)),
    ".": re.compile(
        r"(?i)[ \t]*(?:agora[ \t]+(?:é|e)|now[ \t]+(?:it['’]s|it[ \t]+is)|it['’]s[ \t]+now"
        r"|ahora[ \t]+es|maintenant[ \t]+c['’]est|jetzt[ \t]+ist[ \t]+es|nü[ \t]+es"
        r"|mo[ \t]+è"  # (Neapolitan: `Mo è PizzaFritta_81`)
        r"|sekarang|skrg|skrng"  # (Indonesian's now: `… ke-lock. skrg L4g0on!88`)
        # (the new one, named before a colon: Turkish `… değişti. Yenisi: galatakulesi34`)
        r"|(?:new(?:[ \t]+one)?|yeni(?:si)?|nuevo|nueva|novo|nova|neu|neues|nouveau"
        r"|nouvelle)[ \t]*:)[ \t]"),
}


def told_nearby(text: str, pos: int) -> tuple[int, int] | None:
    """The span of the first password-shaped word (or passphrase, `_phrase`) in the clause
    after the password word that ends at `pos`, or past the clause's end (`_far`), or None.
    Only in prose: the word must be followed by a blank or a mark of prose (`password: …`,
    `passwordFile`, `password=…` are the readers' to read)."""
    stem = text[max(0, pos - 5):pos].lower()
    if stem == "parol" and text.startswith(("' ", "’ ", "ʹ "), pos):
        pos += 1  # Russian's soft sign, transliterated (`parol' ot wifi … teper Neva#484`)
    elif stem in _TURKIC_STEMS and (suffix := _TURKIC_SUFFIX.match(text, pos)) is not None:
        pos = suffix.end()  # Turkish's and Azerbaijani's (`şifreniz de Lale1988@ olarak …`)
    elif stem.endswith("բառ") and text.startswith(("ս", "դ", "ը", "ն"), pos):
        pos += 1  # Armenian's my, your, the (`Գաղտնաբառս … հիմա Nare_Vanadzor7 է`)
    elif text.startswith(("'", "’", "-"), pos) and (suffix := _MARKED_ENDING.match(text, pos)):
        pos = suffix.end()  # a case's ending after an apostrophe (Turkish: `password'u
        # değiştirdim`, `şifre'yi`; `password's` is), Indonesian's and Malay's `-nya` (its),
        # romanised Korean's topic (`bimilbeonho-neun`)
    elif stem == "sword" and text.startswith(("i ", "y ", "u ", "ua "), pos):
        pos = text.index(" ", pos)  # Kurdish's of (`passwordi emaili … Bakhtiyari.Pharma55 a`),
        # Amharic's the, her (`wifi passwordu Tiru@Bet_19 neber`)
    elif stem.endswith("ord") and text.startswith(("et", "en"), pos) and not (
            text[pos + 2:pos + 3].isalnum()):
        pos += 2  # Norwegian's, Danish's, Swedish's the (`passordet til … er SildSommer2025!`)
    if pos >= len(text) or text[pos].isalnum() and not (
            # (in a script written without blanks the next word is glued: `密码我改了，新的是 …`)
            _UNSPACED_SCRIPT.match(text, pos) and _UNSPACED_SCRIPT.match(text, pos - 1)) or (
            text[pos] in _GLUED and not text.startswith((". ", ".\n"), pos)) or (
            text[max(0, pos - 9):pos].lower() == "1password"):  # (the manager's name)
        return None  # (a sentence's end is not glued: `… my passphrase. It's …`)
    reach = text[pos:pos + TOLD_FAR]
    cut = _PARAGRAPH_END.search(reach)
    if cut is not None:
        reach = reach[:cut.start()]
    end = _CLAUSE_END.search(reach, 0, TOLD_REACH)
    while end is not None and (tells := _TELLS_PAST.get(end.group().strip()[:1])) is not None and (
            tells.match(reach, end.end())):
        end = _CLAUSE_END.search(reach, end.end(), TOLD_REACH)  # (`admin password — ours is …`)
    clause_end = min(len(reach), TOLD_REACH) if end is None else end.start()
    if _TOLD_MARK.search(reach) is None and _PHRASE_MARK.search(reach) is None:
        return None  # no digit, symbol or phrase: no word in it is shaped as a password
    line = text[max(text.rfind("\n", max(0, pos - 200), pos) + 1, pos - 200):pos]
    if _COMMAND_LINE.match(line) or _OPTION.search(line):
        return None  # a command line: its options are the flag rules' to read
    # past a template's, markup's or assignment's mark, or a password manager's name (`is in
    # 1Password, item Osaka-Routers-2024`: where it is kept), the clause holds no value
    mark = _CODE_MARK.search(reach)
    kept = _KEPT_IN.search(reach)
    if kept is not None and _KEEPER_IS.match(reach, kept.end()):
        kept = None  # the manager's own password (`for the "Davvi-IT" vault is now …`)
    after_mark = mark.start() if mark is not None else len(reach)
    after_kept = kept.end() if kept is not None else len(reach) + 1
    previous = ""
    words_seen = 0
    for m in _TOLD_WORD.finditer(reach):
        if m.start() > after_mark or m.start() >= after_kept:
            return None
        word, after_user = m.group(), previous in _USER_WORDS
        previous = word.strip(".,;:()«»“”\"'").lower()
        if after_user:
            continue  # `the password for user bob123 expired`: a user's name
        lead = len(word) - len(word.lstrip("(«“\"'‘[<,"))  # (`,wpa3-psk`: a list's next item)
        value = word[lead:].rstrip(".,;:)»”\"'’]>?")
        span = _phrase(reach, m.start(), lead)
        if span is None and words_seen < 3 and m.start() < clause_end and _told_digits(
                reach, line, m, value):
            span = m.start() + lead, m.start() + lead + len(value)
        words_seen += any(c.isalnum() for c in word)  # (a dash alone is no word)
        if span is None and _told(value) and (m.start() < clause_end or _far(value)):
            span = m.start() + lead, m.start() + lead + len(value)
        if span is not None:
            if m.start() >= clause_end and (_EXAMPLES.search(line)
                                            or _EXAMPLES.search(reach, 0, m.start())):
                return None  # a policy's or a quiz's examples (`e.g. 'Summer2024!'`)
            return pos + span[0], pos + span[1]
    if end is not None and reach[end.start()] == "?":
        # a question asking for the password, answered by the next line alone (`cuál es la
        # pass del router??\n—chaltumay2018`), or by one of the two after it with a word no
        # name is shaped as (`… password sa wifi …?\nDodong: oo gi-ilisan …\nDodong: sugbo_1565?`)
        at = end.start()
        for later in range(3):
            at = reach.find("\n", at) + 1
            if not at:
                break
            answer = _ANSWER_LINE.match(reach, at)
            if answer is not None and _told(v := answer.group("v")) and (not later or _far(v)):
                return pos + answer.start("v"), pos + answer.end("v")
    return None


# A passphrase: three words or more joined by one of `-._` (`green-window-quarry`,
# `pebble_lantern_cloud_76`), or in quotes, blanks between (`"biscuit giraffe orbit marble"`,
# or two words and a number: `"halibut cheeks 48"`), a number after them or not; each word in
# lower case or capitalised (`ASX-Guest-Events`, `SL-Destilaria-V4` are names), none a word of
# names, keys or messages (`_NOT_PHRASE`), not a key's value (`name: orders-db-credentials`).
# Measured on blind rounds 1-211 (session 29): 16 of their 52 missed passphrases found, no
# look-alike of 12,831 newly flagged (before the word and key tests, 145 were: Kubernetes
# secrets' names, snake-case keys, UI buttons).
_PHRASE_WORD = r"[^\W\d_]{3,14}"
_JOINED_PHRASE = re.compile(
    rf"{_PHRASE_WORD}(?P<sep>[-._]){_PHRASE_WORD}(?:(?P=sep){_PHRASE_WORD})+"
    r"(?:(?P=sep)?\d{1,4})?[!?#*]?(?=[\s,;!?)»”\"'’]|[.:](?!\w)|$)(?![ \t]*(?:=|:\s))")
_QUOTED_PHRASE = re.compile(
    rf"[\"“„«'‘]((?:{_PHRASE_WORD} ){{1,11}}{_PHRASE_WORD}(?: ?\d{{1,4}})?[!?]?)[\"”“»'’]")
_PHRASE_MARK = re.compile(r"[^\W\d_]{3}[-._][^\W\d_]{3,14}[-._]|[\"“„«'‘][^\W\d_]{3,14} ")
# Words of names, keys and messages, not of passphrases (`orders-db-credentials`,
# `manage_master_user_password`, `"Self-Service-Portal"`, `"must change password at next
# logon"`, `"Esqueci minha senha"`): a phrase holding one is none.
_NOT_PHRASE = re.compile(r"""(?x)pass|senha|has[lł]|has[eę][lł]|parol|wort|clave|contra
    |^(?:the|and|for|not|you|your|our|with|from|must|will|has|have|are|was|this|that|next
    |how|what|new|old|all|any|sin|con|por|para|une|des|les|der|die|das|und|mit|nie|moja|minha
    |api|app|apps|svc|service|services|server|portal|self|user|users|admin|login|logon|auth
    |client|secret|secrets|token|tokens|key|keys|cert|certs|credential|credentials|creds|env
    |config|conf|file|files|value|values|version|master|initial|default|test|prod|staging
    |dev|data|base|sync|feed|ingest|export|exports|import|backup|backups|cache|queue|queues
    |log|logs|error|errors|mail|smtp|http|https|tls|ssl|ssh|vpn|web|remote|local|internal
    |cluster|node|pod|meter|signing|jwt|vault|share|shared|read|write|only|get|set|put|post
    |delete|update|create|into|true|false|null|none|name|title|label|hint|short|long
    |sql|postgres|mysql|redis|kafka|elastic|search|scoring|scheduler|gateway|bridge|crm
    |erp|pos|hub|bot|bucket|setup|forgot|reset|change|changed|first|last|try|break
    |example)$""")
# (and a password's name in any language: `"Quên mật khẩu"`, `'Ξέχασα τον κωδικό'` are
# buttons; as the view writes them, folded)
_PASSWORD_NAMES = tuple({fold(w).strip() for w in viewed_words(_PASSWORD_WORDS)
                         if len(w.strip()) >= 4})
# a key's line before the phrase (`  name: depot-dashboard-maps`, `hostname: x.y.z`)
_KEY_LINE = re.compile(r"(?:^|\n)[ \t]*-?[ \t]*[\w.-]+:[ \t]*[\"']?$")
_DOC_PHRASES = ("correct horse battery staple",)  # (XKCD's, quoted in every training)
_PHRASE_PARTS = re.compile(r"[-._ ]")


def _phrase_words(value: str) -> bool:
    words = [w for w in _PHRASE_PARTS.split(value.rstrip("!?#*")) if not w.isdigit()]
    digits = value.rstrip("!?#*")[-1:].isdigit()
    if not ((len(words) >= 3 or (len(words) == 2 and digits))
            and all(w.islower() or w.istitle() for w in words)
            and (len(set(words)) > 1 or digits)):
        return False
    if "." in value and not digits and len(words[-1]) <= 3:
        return False  # a host (`cites.salut.example.cat`)
    if not digits and all(len(w) <= 3 for w in words):
        return False  # syllables joined as Taiwanese Hokkien's POJ writes a word (`chu-sìn-sek`)
    folded = fold(value)
    return (not any(_NOT_PHRASE.search(w.lower()) for w in words)
            and folded not in _DOC_PHRASES and not any(w in folded for w in _PASSWORD_NAMES))


def _phrase(reach: str, start: int, lead: int) -> tuple[int, int] | None:
    """The span of a passphrase (`_JOINED_PHRASE`, `_QUOTED_PHRASE`) at the word starting at
    `start` of `reach` (`lead`: the quotes and brackets it opens with), or None."""
    span = None
    if lead:
        m = _QUOTED_PHRASE.match(reach, start + lead - 1)
        if m is not None and _phrase_words(m.group(1)):
            span = m.span(1)
    if span is None:
        m = _JOINED_PHRASE.match(reach, start + lead)
        if m is not None and _phrase_words(m.group()):
            span = m.span()
    if span is None or _KEY_LINE.search(reach, 0, start + lead):
        return None
    value = reach[span[0]:span[1]]
    if not (value[0].islower() or value[-1].isdigit() or value[-2:-1].isdigit()):
        return None  # a name or a title (`Zero-Pole-Gain`, `"Steganos virtual secure drive"`)
    return span


# A code of digits told within the first three words after the password word (`kwa password
# 507538 lakini`, `e-Devlet şifresi 601496`, `senha de desarme 106350`, `ar paroli 55632104`):
# 4 to 8 digits as a keypad takes them (`engine.access_code`: no year, no `1234`), not a count
# (`password 8 characters`, `90 days`), nor an example's, an extension's or a transponder's
# number. Measured on blind rounds 1-211 (session 29): 12 of their 159 missed codes found, no
# look-alike newly flagged (before the words of examples and extensions, and across a line's
# end: 5; session 28's reader of any number in the clause: 15 found, 24 flagged).
_NOT_A_CODE = re.compile(
    r"(?i)e\.g\.|\bej\.|p\. ?ex\.|z\. ?b\.|\bex\.|example|ejemplo|exemple|beispiel|內線|内线"
    r"|\bext\b|extension|poste|durchwahl|squawk"
    # an article's, an activity's, a material's, a warehouse's, a product's code (`šifra
    # artikla 100234`: the South Slavic word for code is also the one for password)
    r"|artikl|djelatnost|delatnost|materijal|magacin|proizvod|артикл|делатност|дејност"
    r"|материјал|магацин|производ")
_UNIT_AFTER = re.compile(
    r"(?i)[ \t]*(?:(?:day|jour|tag|dia|día|character|caract|zeichen|char|digit|chiffre|cifra"
    r"|ziffer|stellig|minute|hour|heure|stunde|week|month|year|times|fois|veces|vezes|attempt"
    r"|essai|versuch|intento)|(?:an|ans|mal)\b|[%€$])")


def _told_digits(reach: str, line: str, m: re.Match[str], value: str) -> bool:
    """`value`, the word `m` of `reach` less its marks, is such a code (`line`: the text
    before the password word on its line)."""
    return (value.isdigit() and access_code(value) and not _UNIT_AFTER.match(reach, m.end())
            and not _NOT_A_CODE.search(reach, 0, m.start()) and not _NOT_A_CODE.search(line))


def _far(v: str) -> bool:
    """A word past the password word's clause (`my password is wrong. I'm typing
    Shikongo2021*`, `[10:03] Brian: its Meadow1012+` on the next line of a chat): only one
    that no name, code or identifier is shaped as, 8 characters or more with letters and
    digits, and a password's symbol or both cases run together (`Namutebi1991`, maybe with a
    `$` at the end: `(MojcaTanker14$)`; not
    `Foundry-MFP-1`, `SL_Destilaria_V4`, `Audit-2023`)."""
    return (len(v) >= 8 and any(c.isdigit() for c in v)
            and (not _TOLD_SYMBOLS.isdisjoint(v)
                 or v.rstrip("$").isalnum() and not v.islower() and not v.isupper()
                 or _WORD_DOT_YEAR.fullmatch(v) is not None))


# a capitalised word, a dot and a year, as people make passwords (`Silvretta.1963`; a name's
# parts are joined by `-` or `_`: `Audit-2023`)
_WORD_DOT_YEAR = re.compile(r"[A-Z][a-z]{3,}\.(?:19|20)\d\d")


def _told(v: str) -> bool:
    """`v` is shaped as a password people make, not as what else a clause holds."""
    if not 6 <= len(v) <= 64 or v[0] in "/~\\$%{<@#" or v.startswith(
            ("...", "…")) or not _NOT_IN_TOLD.isdisjoint(
            v.replace("$", "").replace("<3", "")) or v.rstrip("!?").isalpha():  # (`<3`: a heart)
        return False
    if "$" in v and (not any(c.islower() for c in v[:v.index("$")]) or "${" in v or "$(" in v):
        return False  # a price (`US$10`, `R$250`), a template (`${PW}`); not a `$` inside a
        # password (`Yakasai$10`, `Pa$$w0rd`)
    if max(v) >= "\u2e80":
        return False  # a sentence in a script written without blanks (CJK): not one word
    digit = any(c.isdigit() for c in v)
    if v.endswith("@") and not digit:
        return False  # an address cut at its `@` (`sistemas@`)
    if not any(c.isalpha() for c in v) or not digit and _TOLD_SYMBOLS.isdisjoint(v):
        return False  # a number; a word or a name (`Galaxy-Tab`)
    if not digit and _DOTTED.fullmatch(v):
        return False  # a host or a dotted name
    _, at, host = v.rpartition("@")
    if at and ("." in host or _HOST.fullmatch(host) and any(c.isalpha() for c in host)):
        return False  # an e-mail address; an account at a host (`sag_admin@SAG-PRD-01`)
    if _NOT_TOLD.fullmatch(v):
        return False
    return _NOT_TOLD_LOWER.fullmatch(v.lower()) is None and not placeholder_token(v)


def _in_expansion(text: str, pos: int) -> bool:
    """The keyword ends a variable's name in a shell expansion that fails when it is unset
    (`${DB_PASSWORD:?missing DB_PASSWORD}`): what follows is the error's message, not a
    value (a default, `${DB_PASSWORD:-…}`, is one)."""
    if not text.startswith((":?", "?"), pos):
        return False
    start = _name_start(text, pos)
    return text[max(0, start - 2):start] == "${"


def _in_arn(text: str, pos: int) -> bool:
    """The keyword is part of an AWS resource name (`arn:aws:secretsmanager:…:secret:app/x`),
    which names a secret, not holds one."""
    i = text.rfind("arn:", max(0, pos - 120), pos)  # (C searches: a flood of keywords
    return (i != -1 and (i == 0 or not text[i - 1].isalnum())  # costs little)
            and _ARN_TO_KEYWORD.fullmatch(text, i, pos) is not None)


_ARN_TO_KEYWORD = re.compile(r"arn:[^\s\"'`=,(\[{]*")


def _in_template_pipe(text: str, pos: int) -> bool:
    """The keyword is inside a template expression that pipes it on (`{{ .Values.password |
    b64enc }}`): what follows the `|` is a function, not the value (but `| default "…"`
    gives a literal default, which the readers read)."""
    opened = text.rfind("{{", max(0, pos - 160), pos)
    if opened == -1 or text.rfind("}}", opened, pos) != -1:
        return False
    close = text.find("}}", pos, pos + 200)
    rest = text[pos:close] if close != -1 else ""
    return "|" in rest and "default" not in rest


def _next_taken(text: str, pos: int, taken: Callable[[int, int], bool]) -> bool:
    """The first character after the keyword's operator (`token hf_…`, `KEY="gsk_…`) is in
    a rule's finding: the value the readers below would read is that finding's."""
    j, n = pos, len(text)
    while j < n and j - pos < 8 and text[j] in " \t:=\"'`":
        j += 1
    return j < n and taken(j, j + 1)


# A table's header row names its columns; a separator row of Markdown (`|---|:--:|`).
# A header's cell: a name, which may hold digits and an apostrophe after its first letter
# (`m365_login`, `Date d'arrivée`) or start with digits before letters (`2FA`).
_CJK = "\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af"  # kana, Han ideographs, Hangul syllables
# and the scripts of Hebrew, Arabic (Persian, Urdu), India (Devanagari, Bengali), Thai,
# Tibetan (`| النظام | المستخدم | كلمة المرور |`)
_SCRIPTS = _CJK + "\u0590-\u05ff\u0600-\u06ff\u0900-\u09ff\u0e00-\u0e7f\u0f00-\u0fff"
_HEADER_CELL = re.compile(
    f"(?:[A-Za-zÀ-ɏͰ-ӿḀ-ỿ{_SCRIPTS}]|\\d{{1,3}}[A-Za-zÀ-ɏͰ-ӿḀ-ỿ{_SCRIPTS}])"
    f"[A-Za-zÀ-ɏͰ-ӿḀ-ỿ{_SCRIPTS}0-9 _./()#'’-]{{0,31}}")
# (names in the Latin letters with accents, Vietnamese's too, Greek and Cyrillic, Japanese,
# Chinese and Korean: `Slaptažodis`, `Mật khẩu`, `Пароль`, `パスワード`, `密碼`, `비밀번호`)
_NAME_CHARS = f"A-Za-zÀ-ɏͰ-ӿḀ-ỿ{_SCRIPTS} _./()#\"'\t|;,-"  # names, quotes, a row's separators
_NOT_NAME = re.compile(f"[^{_NAME_CHARS}]")
_NOT_HEADER = re.compile(f"[^0-9’{_NAME_CHARS}]")  # a header's names may hold digits
_MD_RULE = re.compile(r"[ \t]*+(?:\|[ \t]*+)?:?-{3,}")  # (possessive: a row of blanks
# was read in quadratic time, 3 ms for 700 tabs)
_TABLE_LINE = 1000  # characters in a header or a row; a longer line is no table's
# the secret words that head a column of passwords (`| System | Account | Credential |`)
_CREDENTIAL_HEADS = ("credential", "credentials")
_COLUMN_WORD = re.compile(r"(?i)pass|pwd|pw|mdp|mot de passe|contraseña|senha|kennwort"
                          r"|パスワード|密码|密碼|비밀번호|كلمة المرور|كلمة السر|סיסמה|รหัสผ่าน")


# a header of two names and one pipe (`username | password`, a table typed by hand), not a
# shell's pipe (`echo password | sudo -S`: a name with a blank or a dash)
_TWO_NAMES = re.compile(r"[ \t]*[A-Za-zÀ-ɏͰ-ӿ_]{2,20}[ \t]*\|[ \t]*[A-Za-zÀ-ɏͰ-ӿ_]{2,20}[ \t]*")


def _column(text: str, pos: int, out: list[Hit], token: bool = False) -> int:
    """The cells of a password column: the keyword ending at `pos` heads a column of a
    table (Markdown `| user | password |`, CSV, TSV, `;`-separated) whose header row holds
    names only; each cell below it, row by row until the table ends, is a password when
    it would be one as a quoted literal (of a `token` or key column: a token a machine
    wrote, `random_token` or 32 hex digits). A row of names only is another header, and so is a
    row a header could be whose cell in the column names a password (`user3,password`): the
    table ends there; and only a header's first password column is read (`password`, not
    also `confirm_password`): each row is read once at most (linear in the text; a line of
    `user3,password` repeated was read by every line above it, 126 ms per KB at 32 KB)."""
    rows = 0  # rows read: the counted work (a test holds it linear)
    ls = text.rfind("\n", max(0, pos - _TABLE_LINE), pos) + 1
    le = text.find("\n", pos, pos + _TABLE_LINE)
    if ls == 0 and pos > _TABLE_LINE or le == -1:
        return rows
    header = text[ls:le].rstrip("\r")
    sep = next((d for d in "|\t;," if header.count(d) >= (2 if d == "|" else 1)
                or (d == "|" and _TWO_NAMES.fullmatch(header))), None)
    if sep is None or not _is_header(header, sep):
        return rows
    cells = header.split(sep)
    k = header.count(sep, 0, pos - ls)  # the keyword's cell, in every row split alike
    if _names_no_secret(cells[k]) or any(ch.isdigit() for ch in cells[k]) or (
            _COLUMN_WORD.search(header, 0, max(0, header.rfind(sep, 0, pos - ls)))):
        return rows  # `password_hash`, `password policy`; a second password column
    line = le + 1
    while True:
        end = text.find("\n", line, line + _TABLE_LINE + 1)
        if end == -1:
            if len(text) - line > _TABLE_LINE:
                return rows  # a line longer than a table's
            end = len(text)
        row = text[line:end].rstrip("\r")
        rows += 1
        if sep == "|" and _MD_RULE.match(row):
            line = end + 1
            continue
        row_cells = _row_cells(row, sep)
        if len(row) > _TABLE_LINE or not k < len(row_cells) <= len(cells) or not row.strip():
            return rows  # the table ends (a row may leave out its last empty cells)
        start, cell = row_cells[k]
        if not _NOT_NAME.search(row):
            if not _no_value(cell) and len(cell.split()) < 3 and (
                    sep != "|" or _MD_RULE.match(text, end + 1)):
                return rows  # names only: a header, not a row of values (in Markdown, a
                # header has its rule under it: `| Fire panel | viewer | badge SSO |` is a row)
            # (a row with no password: `Canva<TAB>SSO via Google<TAB>-`, `| Marina_Guest |
            # guests | printed on keycard sleeve |`)
            line = end + 1
            continue
        if _COLUMN_WORD.search(cell) and "1password" not in cell.lower() and not _no_value(
                cell) and _is_header(row, sep):  # (not `see 1Password`, `siehe KeePass`: where
            # the password is kept)
            return rows  # another header (`user3,password`): its own keyword reads on from here
        v = cell.strip().strip("\"'")
        if v and " " not in v and not _no_value(cell) and (
                (plausible_secret(v) and (random_token(v, 16) or long_hex(v))) if token
                else plausible_password(v, quoted=True)):
            at = line + start + cell.index(v)
            out.append((at, at + len(v), "generic_secret" if token else "password"))
        if end >= len(text):
            return rows
        line = end + 1


def _is_header(line: str, sep: str) -> bool:
    """A table's header row: two names or more (`=`, `:`, `@`… make a line of values)."""
    if _NOT_HEADER.search(line):
        return False
    names = [c.strip().strip("\"'") for c in line.split(sep)]
    if sep == "|":  # the outer pipes of `| a | b |` open and close no cell
        names = names[1:] if not names[0] else names
        names = names[:-1] if names and not names[-1] else names
    return len(names) >= 2 and all(_HEADER_CELL.fullmatch(n) for n in names)


_NO_VALUE = frozenset(("", "-", "—", "–", "n/a", "N/A", "none", "aucun", "keine",
                       "SSO", "(SSO)", "sso", "(sso)"))  # (a login by single sign-on)
# A cell saying where the password is instead of holding it: an aside in brackets (`(in
# kluis)`, `(ask Despina)`), or `see …`, `via …`, `ask …`, `in …` (`see KeePass`, `via SSO`)
_POINTER = re.compile(r"\(.*\)|(?i:see|via|ask|in|zie|siehe|voir|ver|vedi|im|dans|fråga|spør"
                      r"|vidi|se)\s.*")


def _no_value(cell: str) -> bool:
    """A password column's cell that holds no password (`-`, `SSO`, `(in kluis)`, `see
    KeePass`): a row of names with it is still a row of the table, not another header."""
    cell = cell.strip()
    return cell in _NO_VALUE or _POINTER.fullmatch(cell) is not None


def _row_cells(row: str, sep: str) -> list[tuple[int, str]]:
    """The cells of a table row and where each starts; in CSV a quoted cell may hold the
    separator (`"NAS du bureau, accès admin"`)."""
    if '"' not in row or sep == "|":
        cells, at = [], 0
        for cell in row.split(sep):
            cells.append((at, cell))
            at += len(cell) + 1
        return cells
    cells, start, quoted = [], 0, False
    for i, ch in enumerate(row):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            cells.append((start, row[start:i]))
            start = i + 1
    cells.append((start, row[start:]))
    return cells


_INSERT_INTO = re.compile(r"(?i)\binsert[ \t]+(?:ignore[ \t]+)?into[ \t]+[\w.`\"\[\]]{1,64}[ \t]*$")
_SQL_COLUMN = re.compile(r"[ \t\r\n]*[`\"\[]?[A-Za-z_][\w$]{0,63}[`\"\]]?[ \t\r\n]*")
_VALUES = re.compile(r"(?i)[ \t\r\n]*values[ \t\r\n]*")
# one value of a row: a quoted string ('' and "" escape their quote), or anything else up to
# the next comma or parenthesis (numbers, NULL, a call without nested parentheses)
_SQL_VALUE = re.compile(
    r"""[ \t\r\n]*(?:'(?P<s>(?:[^'\\]|''|\\.){0,256})'|"(?P<d>(?:[^"\\]|""|\\.){0,256})"
        |[\w.+-]{1,64}(?:\([^()]{0,64}\))?)[ \t\r\n]*""", re.X)
_SQL_NEXT_ROW = re.compile(r"[ \t\r\n]*,[ \t\r\n]*\(")


def _sql_insert(text: str, pos: int, out: list[Hit], kind: str = "password") -> None:
    """The values of a password column in `INSERT INTO t (name, password) VALUES (…), (…)`
    (or of a secret's, `api_secret`): the keyword ending at `pos` is a column of the list;
    each row's value at its place is a secret when it would be one as a literal beside the
    name. Only the list's first password column is read, so each row is read once."""
    i = text.rfind("(", max(0, pos - 300), pos)
    if i <= 0 or ")" in text[i:pos] or not _INSERT_INTO.search(text, max(0, i - 96), i):
        return
    j = text.find(")", pos, pos + 300)
    if j == -1:
        return
    columns = text[i + 1:j].split(",")
    if not all(_SQL_COLUMN.fullmatch(c) for c in columns):
        return
    index = text.count(",", i, pos)
    if _COLUMN_WORD.search(text, i, i + 1 + sum(len(c) + 1 for c in columns[:index])):
        return  # a second password column: the first one reads the rows
    if _names_no_secret(columns[index]):
        return  # `password_hash`
    m = _VALUES.match(text, j + 1)
    if m is None or not text.startswith("(", m.end()):
        return
    _insert_rows(text, m.end() + 1, len(columns), index, kind, out)


def _insert_rows(text: str, at: int, width: int, index: int, kind: str,
                 out: list[Hit]) -> None:
    """The rows of an `INSERT … VALUES (…), (…)` from `at` (just inside the first row's
    parenthesis), `width` values each: the value at `index` of each when it would be a
    secret of `kind` as a literal beside its name."""
    detector = _detector(kind)
    while True:  # one row: values separated by commas, closed by `)`
        for k in range(width):
            v = _SQL_VALUE.match(text, at)
            if v is None:
                return
            if k == index:
                g = "s" if v.group("s") is not None else "d"
                lit = v.group(g)
                # (a password column's value may look like a name: `Dispatch2018!`)
                if lit is not None and (_literal_ok(lit, kind) if kind != "password" else (
                        plausible_password(lit, quoted=True) and _mixed(lit))):
                    out.append((v.start(g), v.end(g), detector))
            at = v.end()
            if text.startswith(",", at) and k < width - 1:
                at += 1
            elif not (text.startswith(")", at) and k == width - 1):
                return  # a row of another shape: the statement is not what it seemed
        nxt = _SQL_NEXT_ROW.match(text, at + 1)
        if nxt is None:
            return
        at = nxt.end()


# A dump's table: its definition (`CREATE TABLE \`t\` (` … one column a line … `)`), then
# rows inserted with no column list (`INSERT INTO \`t\` VALUES (…)`); PostgreSQL's
# `COPY t (a, b) FROM stdin;` and its rows of tab-separated values up to `\.`.
_CREATE_TABLE = re.compile(r"(?i)create[ \t]+table[ \t]+(?:if[ \t]+not[ \t]+exists[ \t]+)?"
                           r"[`\"\[]?(?P<t>[\w.$]{1,96})[`\"\]]?[ \t]*\([ \t]*\r?\n")
_COLUMN_DEF = re.compile(r"[ \t]*[`\"\[]?(?P<c>[A-Za-z_][\w$]{0,63})[`\"\]]?[ \t]+[A-Za-z]")
_NOT_COLUMN = re.compile(r"(?i)[ \t]*(?:primary|unique|key|constraint|index|foreign|check"
                         r"|fulltext|spatial)\b")
_COPY = re.compile(r"(?i)COPY[ \t]+[\w.\"]{1,96}[ \t]*\((?P<cols>[^()\n]{1,2000})\)[ \t]+FROM"
                   r"[ \t]+stdin;[ \t]*\r?$")
_DUMP_REACH = 20000  # characters between a table's definition and its rows
_COLUMN_LEADS = frozenset(" \t`\"[")


def _dump_rows(text: str, pos: int, kind: str, out: list[Hit]) -> None:
    r"""The keyword ending at `pos` names a column of a dump's table, or a setting in a
    COPY block's row (`3\tnzpost\tclient_secret\tjzb8m2…`): the column's value in each row
    inserted with no column list or copied, or the setting's value in the next cell."""
    start = text.rfind("\n", max(0, pos - _TABLE_LINE), pos) + 1
    end = text.find("\n", pos, pos + _TABLE_LINE)
    if start == 0 and pos > _TABLE_LINE or end < 0 and len(text) > pos + _TABLE_LINE:
        return  # a line too long for a table's
    end = len(text) if end < 0 else end
    if text[start:start + 1] in _COLUMN_LEADS:  # (a definition's columns are indented)
        column = _COLUMN_DEF.match(text, start, end)
        if column is not None and column.start("c") < pos <= column.end("c"):
            if not _names_no_secret(column.group("c")):
                _created_rows(text, start, kind, out)
            return
    if text.startswith(("COPY ", "copy "), start):
        line = text[start:end]
        copy = _COPY.match(line)
        if copy is not None and copy.start("cols") < pos - start <= copy.end("cols"):
            index = line.count(",", copy.start("cols"), pos - start)
            if not _names_no_secret(copy.group("cols").split(",")[index]):
                _copied_rows(text, end + 1, index, False, kind, out)
        return
    if text.find("\t", start, end) >= 0:  # a setting's row in a COPY block: `…\tclient_secret\t…`
        cell_start = text.rfind("\t", start, pos) + 1 or start
        cell_end = text.find("\t", pos, end)
        if cell_end < 0 or _names_no_secret(text[cell_start:cell_end]) or not _NAME_TAIL.fullmatch(
                text, cell_start, cell_end) and not _DOTTED.fullmatch(text, cell_start, cell_end):
            return
        head = text.rfind("FROM stdin;", max(0, start - _DUMP_REACH), start)
        if head >= 0 and "\n\\." not in text[head:start]:
            _copied_rows(text, start, text.count("\t", start, cell_end), True, kind, out)


def _created_rows(text: str, start: int, kind: str, out: list[Hit]) -> None:
    """The column defined on the line at `start` of a `CREATE TABLE`: its value in each row
    of the table's `INSERT INTO t VALUES` that follows."""
    low = text.rfind("create table", max(0, start - 4000), start)
    low = max(low, text.rfind("CREATE TABLE", max(0, start - 4000), start))
    head = _CREATE_TABLE.match(text, low) if low >= 0 else None
    if head is None or head.end() > start or ";" in text[head.end():start]:
        return
    index = width = 0
    at = head.end()
    while True:  # the definition's lines, one column or constraint each, up to its `)`
        nl = text.find("\n", at, at + _TABLE_LINE)
        if nl < 0 or at > head.end() + 8000:
            return  # not a table's definition (8 KB at most, lines of 1,000 characters)
        if text[at:nl].lstrip().startswith(")"):
            break
        if _NOT_COLUMN.match(text, at, nl) is None:
            if _COLUMN_DEF.match(text, at, nl) is None or text.startswith(
                    ("CREATE", "create"), at):
                return
            index = width if at == start else index
            width += 1
        at = nl + 1
    insert = re.compile(r"(?i)insert[ \t]+(?:ignore[ \t]+)?into[ \t]+[`\"\[]?"
                        + re.escape(head.group("t")) + r"[`\"\]]?[ \t]+values[ \t\r\n]*\(")
    for literal in ("INSERT INTO", "insert into"):  # (a literal's search, then the regex's)
        i = text.find(literal, at, at + _DUMP_REACH)
        while i >= 0:
            rows = insert.match(text, i)
            if rows is not None:
                _insert_rows(text, rows.end(), width, index, kind, out)
                return
            i = text.find(literal, i + 1, at + _DUMP_REACH)


def _copied_rows(text: str, at: int, index: int, setting: bool, kind: str,
                 out: list[Hit]) -> None:
    r"""The cell at `index` of each tab-separated row of a COPY block from `at` (to `\.`),
    or, for a `setting`'s row, the one cell after it in the row at `at`."""
    detector = _detector(kind)
    while at < len(text) and not text.startswith("\\.", at):
        nl = text.find("\n", at, at + _TABLE_LINE)
        nl = len(text) if nl < 0 and len(text) <= at + _TABLE_LINE else nl
        if nl < 0 or "\t" not in text[at:nl]:
            return  # not a row of the block (a row of one column has no name to read)
        cells = text[at:nl].rstrip("\r").split("\t")
        k = index + 1 if setting else index
        if k < len(cells) and cells[k] != "\\N" and _literal_ok(cells[k], kind):
            begin = at + sum(len(c) + 1 for c in cells[:k])
            out.append((begin, begin + len(cells[k]), detector))
        if setting:
            return
        at = nl + 1


# A key written as a literal array of bytes: `Secret: []byte{33, 9, …}` (Go), `byte[] KEY =
# {0x1f, …}` (Java, C#), `key = bytes([…])`, `const KEY: [u8; 16] = […]` (Rust).
_BYTE = r"(?:0[xX][0-9a-fA-F]{1,2}|\d{1,3})"
_BYTES = re.compile(
    r"(?P<mid>\w{0,24})[^\n]{0,48}?[\[{][ \t\r\n]{0,16}"
    r"(?P<v>(?:" + _BYTE + r"[ \t]*,[ \t\r\n]{0,16}){15,255}" + _BYTE + r")")
_KEY_WORDS = _words("secret key password passwd pwd token passphrase psk hmac")


def _byte_array(text: str, pos: int, kind: str, out: list[Hit],
                enabled: frozenset[str]) -> None:
    """A secret's name given an array of 16 bytes or more: 8 distinct, not in steps."""
    near = text[pos:pos + 72]
    if "," not in near or ("{" not in near and "[" not in near):
        return  # no array opens after the name: a keyword flood stays cheap
    m = _BYTES.match(text, pos)
    if m is None or _skipped(text, pos, m.group("mid")):
        return
    if not _KEY_WORDS.intersection(_name_words(text, pos, m.group("mid"))):
        return  # `keyboard`, `monkey`: the keyword inside another word
    values = [int(b, 16) if b[1:2] in "xX" else int(b) for b in re.split(r"[\s,]+",
                                                                        m.group("v"))]
    steps = {b - a for a, b in zip(values, values[1:], strict=False)}
    detector = _detector(kind)
    if len(set(values)) >= 8 and len(steps) > 1 and detector in enabled:  # not `1, 2, 3, …`
        out.append((m.start("v"), m.end("v"), detector))


def _joined(v: str) -> bool:
    """A quoted value that starts or ends with another quote joins strings
    (`'password="' + pw + '"'`): code, not a value."""
    return v[0] in "\"'" or v[-1] in "\"'"


def _names_no_secret(name: str) -> bool:
    """A column's whole name holds a skip word (`password_hash`, `passwordPolicy`)."""
    return bool(_SKIP_WORDS.intersection(w.lower() for w in _CAMEL_WORDS.findall(name)))


def _literal_ok(v: str, kind: str) -> bool:
    """A literal beside a secret's variable (its default, or compared with it) is its value:
    a password that mixes letters with digits or symbols and is no name, or a random-looking
    secret."""
    if kind == "password":
        return plausible_password(v, quoted=True) and _mixed(v) and not name_like(v)
    return plausible_secret(v, quoted=True) or _generated_password(v, quoted=True)


def _compare_call(text: str, pos: int) -> bool:
    """The name holding the keyword that ends at `pos` is a comparison call's first argument
    (`strcmp(password, "…")`, `assertEquals(user.password, "…")`)."""
    start = _name_start(text, pos)
    return _COMPARE_CALL.search(text, max(0, start - 64), start) is not None


def _name_start(text: str, pos: int) -> int:
    """Where the name holding the keyword that ends at `pos` starts (`user.password`)."""
    start = pos
    while start > 0 and pos - start < 64 and (text[start - 1].isalnum()
                                              or text[start - 1] in "_$"):
        start -= 1
    return start


_LAST_WORDS = frozenset(("as", *_AS_ARTICLES))


def _after_operand(text: str, start: int) -> bool:
    """What `_COMPARED_BEFORE` needs right before a name starting at `start`, read backwards
    with no regex search (a search tries each of the 160 places before the name): up to
    three members (`user.`), blanks, then `=`, `(` or `,` (`"…" == `, `.equals(`,
    `strcmp("…", `) or the word ending `use … as [the] `. False only where it cannot match."""
    j = start
    for _ in range(3):
        if j == 0 or text[j - 1] != ".":
            break
        k = j - 1
        while k > 0 and j - 1 - k < 32 and (text[k - 1].isalnum() or text[k - 1] in "_$"):
            k -= 1
        if k == j - 1:
            break
        j = k
    while j > 0 and start - j < 160 and text[j - 1] in " \t":
        j -= 1
    if j == 0:
        return False
    c = text[j - 1]
    if c in "=(," or not c.isascii():
        return True  # (a character outside ASCII may be a word's: left to the regex)
    k = j
    while k > 0 and j - k < 5 and text[k - 1].isascii() and text[k - 1].isalpha():
        k -= 1
    return text[k:j] in _LAST_WORDS and j > k


def _compared_before(text: str, pos: int, kind: str, out: list[Hit],
                     enabled: frozenset[str]) -> None:
    """`"…" == password`, `assertEquals("…", password)`: a literal written before the
    secret's name it is compared with."""
    lo = max(0, pos - 200)
    if (text.rfind('"', lo, pos) == -1 and text.rfind("'", lo, pos) == -1
            and text.find(" as ", max(0, pos - 40), pos) == -1):
        return  # no literal before the name (C calls: a keyword flood stays cheap)
    start = _name_start(text, pos)
    if not _after_operand(text, start):
        return
    m = _COMPARED_BEFORE.search(text, max(lo, start - 160), start)
    if m is None:
        return
    tail = _NAME_TAIL.match(text, pos)
    after = tail.end() if tail else pos
    member = text[after:after + 2]  # `password.hint()`, `password(…)`, not a sentence's end
    if member[:1] == "(" or (member[:1] == "." and member[1:].isalpha()):
        return
    if _skipped(text, pos, tail[0] if tail else ""):
        return  # `"text" === passwordInputType`, `"…" == password.hint()`
    g = next(g for g in ("v", "v2", "v3") if m.group(g) is not None)
    v = m.group(g)
    if g == "v3":  # `use Welcome123 as the password`: prose, so a value that cannot be a word
        ok = kind == "password" and _bare_value(v) and _mixed(v) and plausible_password(v)
        if ok and "password" in enabled:
            out.append((m.start(g), m.end(g), "password"))
        return
    detector = _detector(kind)
    if _literal_ok(v, kind) and detector in enabled:
        out.append((m.start(g), m.end(g), detector))


_CAMEL_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _name_words(text: str, pos: int, mid: str) -> list[str]:
    """The words of the whole name a keyword sits in (`publicToken`, `bucket_key`,
    `credentialsId`), camelCase split: a skip word before or after the keyword counts."""
    start = pos
    while start > 0 and pos - start < 48 and (text[start - 1].isalnum()
                                              or text[start - 1] in "_.-"):
        start -= 1
    words = [w.lower() for w in _CAMEL_WORDS.findall(text[start:pos] + mid)]
    words.extend(_NAME_PARTS.split(mid.lower()))  # `keyword`: the keyword's own tail word
    return words


def _name_at(text: str, pos: int) -> str:
    """The whole identifier around position `pos` (letters, digits, `_`, `.`)."""
    a = b = pos
    while a > 0 and pos - a < 96 and (text[a - 1].isalnum() or text[a - 1] in "_."):
        a -= 1
    while b < len(text) and b - pos < 96 and (text[b].isalnum() or text[b] in "_."):
        b += 1
    return text[a:b]


# a word before `key` or `token`, a blank between, that says the value is public
_WORD_BEFORE = re.compile(r"[A-Za-z]{3,16}$")
_PUBLIC_WORDS = _words("public publishable site publieke julkinen " + _PUBLIC_IN_LANGUAGES)
# A preposition in prose between the keyword and its operator: the words after it say what
# the secret opens (`password for the files:`, `token for the endpoint:`), not its kind.
_MID_PREPOSITION = re.compile(
    r"(?i)[ \t](?:for|of|to|on|at|after|für|nach|pour|après|para|después|per|dopo|após|voor"
    r"|til|för|efter|etter|ng)[ \t]")
# the identifier of a key named before it, as Romance languages and German write it, or
# BitLocker's screen (`Use this to identify your key: <uuid>`)
_ID_OF = re.compile(r"(?i)\b(?:(?:id|identifiant|identificador|identificativo|kennung)[ \t]+"
                    r"(?:de|du|del|della|des|der|do|da)[ \t]+(?:la[ \t]+|l['’])?"
                    r"|identify[ \t]+(?:your|the|this)[ \t]+)$")
# a command-line option starting between the keyword and the operator
_FLAG_IN_MID = re.compile(r"[ \t]--?[A-Za-z]")


# a digest tool's line (`MD5 (Sera_ya_Nenosiri_v2.pdf) = b604…`, BSD's `md5`, `shasum
# --tag`): a file's name holding a secret's word, its checksum after
_DIGEST_OUTPUT = re.compile(r"[ \t]*(?:MD5|SHA-?\d{1,3}|SHA3-\d{3}|BLAKE2[bs]?|RMD160)[ \t]\(")


def _skipped(text: str, pos: int, mid: str) -> bool:
    """The name holding the keyword that ends at `pos` makes its value a non-secret: a skip
    word after the keyword (`token_url`, `password_hash`, `secretStore`), or before it
    (`public_key`, `csrf_token`, `next_page_token`) unless it names where a secret is kept
    or what it opens (`keyStorePassword`, `storage_key`, `manager_password`, `urlToken`,
    `reset_token`, `vault_token`, `vault_db_password`). The object path before a dot is not
    the name (`process.env.SECRET`)."""
    start = pos
    while start > 0 and pos - start < 48 and (text[start - 1].isalnum()
                                              or text[start - 1] in "_-"):
        start -= 1
    if start > 0 and text[start - 1] == "(" and _DIGEST_OUTPUT.match(
            text, text.rfind("\n", 0, start) + 1):
        return True  # `MD5 (Sera_ya_Nenosiri_v2.pdf) = …`: a file's checksum
    before = [w.lower() for w in _CAMEL_WORDS.findall(text[start:pos])][:-1]
    if not before and start > 1 and text[start - 1] == " ":  # `public key: …` (WireGuard)
        word = _WORD_BEFORE.search(text, max(0, start - 17), start - 1)
        if word is not None and word.group().lower() in _PUBLIC_WORDS:
            return True
        if _ID_OF.search(text, max(0, start - 24), start):
            return True  # `ID de clé de récupération : <uuid>`: the key's identifier
    if before and before[-1] == "vault":
        before.pop()  # `vault_token`, `X-Vault-Token`: Vault's own token (not `vaultNameKey`)
    if before and before[-1] == "id" and _PRODUCT_ID.match(text, start):
        before.pop()
    if before and before[0] == "vault":
        before.pop(0)  # `vault_mysql_root_password`: Ansible's name for a value kept in a vault
    cut = _MID_PREPOSITION.search(mid) if len(mid) > 3 and mid.strip() else None
    if cut is not None:
        mid = mid[:cut.start()]  # `password for all files this month:`: what it opens
    after = [w.lower() for w in _CAMEL_WORDS.findall(mid)]
    after.extend(_NAME_PARTS.split(mid.lower()))
    if text[max(0, pos - 5):pos].lower() == "token" and _MARKER_TOKEN.intersection(before):
        return True  # `ClientRequestToken`, `ChangeToken`: an idempotency marker
    if text[start:pos] in ANTI_FORGERY_FIELDS and text[max(0, start - 6):start] in (
            'name="', "name='"):
        return True  # Laravel's anti-forgery field, `<input type="hidden" name="_token" …>`
    if text[max(0, pos - 4):pos].lower() == "pass" and _PASS_WORD_TAIL.match(mid):
        return True
    if before and before[-1] in _PUBLIC_WORDS and text[max(0, pos - 3):pos].lower() == "key":
        return True  # `siteKey` (reCAPTCHA's, sent to every browser), `publicKey`
    if before and before[-1] in ("hash", "hmac") and text[max(0, pos - 6):pos].lower() == (
            "secret"):
        before.pop()  # `vnp_HashSecret`, `hmac_secret`: the key a hash is signed with
    if after and after[-1] in _OTHER_FIELDS:
        return True  # `password change required user=store0733`: the user's field
    if before and before[-1] in _KEY_PURPOSE and _PUBLIC_WORDS.isdisjoint(before):
        before = before[-1:]  # `FIELD_ENCRYPTION_KEY`: what it encrypts, not a field's name
    return bool(_SKIP_WORDS.intersection(after) or _SKIP_BEFORE.intersection(before))


def plausible_phrase(v: str, explicit: bool = True) -> bool:
    """A quoted passphrase with spaces: a few words, not a sentence or an instruction."""
    words = v.split()
    if any(c in v for c in "/\\{}%$"):  # a path, a command or a format, not a passphrase
        return False
    # a sentence may end with its punctuation; a phrase with a word such as `Kd8m` is no
    # sentence
    coded = any(_mixed(w) and digit_count(w) for w in words)
    # (two words named with `is` only with a coded one: `the password is "not committed"` is
    # a quotation; `password: "rebind ctrl+s"` and `is "Kd8m lagoon"` are values)
    low = v.lower()
    return ((3 <= len(words) <= 6 or (len(words) == 2 and (coded or explicit)))
            and len(v) >= 8
            and not any(label in low for label in _LABELS)  # `"Mot de passe oublié?"`
            and (coded or not v.rstrip().endswith((".", "?", "!", ":")))
            and not _placeholder(v) and not _PHRASE_HINTS.intersection(w.lower() for w in words))


def word_start_required(keyword: str) -> bool:
    return keyword in _WORD_START
