"""Reference data: demo staff and their credentials, exam rooms, stations, order templates and
competencies; the same in both modes, keyed on natural keys (username, station code, room name)."""

from dataclasses import dataclass, replace
from datetime import timedelta

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import CommandError, OutputWrapper
from django.utils import timezone
from stdnum import luhn

from backoffice import roles
from backoffice.devtools.demo_totp import demo_totp_key
from backoffice.models import Credential, Equipment, ExamRoom, Patient, Station, User
from procedures.models import Competency, ProcedureType
from procedures.services import competency_sign_off

DEMO_PASSWORD = "backoffice-demo-2026"  # public by design: printed after every run
DEMO_TOTP_DEVICE = "Demo authenticator (public key)"  # its key: backoffice.devtools.demo_totp, printed too


# --- Staff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCredential:
    kind: str
    number: str
    issued_days_ago: int
    expires_in_days: int


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    title: str
    role: str
    credentials: tuple[DemoCredential, ...] = ()
    superuser: bool = False


DEMO_USERS = (
    DemoUser(
        "ma",
        "Maria",
        "Alvarez",
        "Medical assistant",
        roles.ROLE_MEDICAL_ASSISTANT,
        (DemoCredential(Credential.Kind.CMA, "CMA-0418823", 700, 1125),),
    ),
    # Her registration runs out within 30 days: the credential warnings have something to show.
    DemoUser(
        "ma2",
        "Jordan",
        "Lee",
        "Medical assistant",
        roles.ROLE_MEDICAL_ASSISTANT,
        (
            DemoCredential(Credential.Kind.RMA, "RMA-2211907", 1070, 21),
            DemoCredential(Credential.Kind.CPT, "CPT-5530142", 300, 430),
        ),
    ),
    DemoUser(
        "supervisor",
        "Samira",
        "Okafor",
        "Clinical supervisor, RN",
        roles.ROLE_SUPERVISOR,
        (DemoCredential(Credential.Kind.RN, "RN-2287340", 2900, 400),),
    ),
    DemoUser(
        "clinician",
        "Priya",
        "Shah",
        "MD, Family medicine",
        roles.ROLE_CLINICIAN,
        (DemoCredential(Credential.Kind.MD, "MD-0271456", 3650, 610),),
    ),
    DemoUser(
        "clinician2",
        "Daniel",
        "Moreau",
        "NP, Internal medicine",
        roles.ROLE_CLINICIAN,
        (DemoCredential(Credential.Kind.NP, "NP-1190385", 1500, 230),),
    ),
    DemoUser(
        "labtech",
        "Wei",
        "Chen",
        "Medical laboratory technician",
        roles.ROLE_LAB_TECH,
        (DemoCredential(Credential.Kind.MLT, "MLT-3308471", 900, 560),),
    ),
    DemoUser("admin", "Alex", "Rivera", "Practice administrator", roles.ROLE_ADMIN, superuser=True),
    DemoUser("auditor", "Harriet", "Nkemelu", "Privacy and compliance officer", roles.ROLE_AUDITOR),
)


# --- Rooms and stations --------------------------------------------------------------------------

EXAM_ROOMS = tuple(f"Exam {n}" for n in range(1, 9))


@dataclass(frozen=True)
class StationSpec:
    code: str
    name: str
    kind: str
    equipment: tuple[str, ...]


STATIONS = (
    StationSpec(
        "proc-1",
        "Procedure room 1",
        Station.Kind.PROCEDURE_ROOM,
        ("exam-table", "ecg", "ultrasound", "suture-kit", "pulse-oximeter"),
    ),
    StationSpec(
        "proc-2",
        "Procedure room 2",
        Station.Kind.PROCEDURE_ROOM,
        ("exam-table", "ear-irrigation", "suture-kit", "catheter-kit", "pulse-oximeter", "vision-chart"),
    ),
    StationSpec(
        "proc-3",
        "Procedure room 3",
        Station.Kind.PROCEDURE_ROOM,
        ("exam-table", "ecg", "spirometer", "nebulizer", "pulse-oximeter"),
    ),
    StationSpec("phleb-1", "Phlebotomy chair 1", Station.Kind.PHLEBOTOMY, ("phlebotomy-chair", "pulse-oximeter")),
    StationSpec("phleb-2", "Phlebotomy chair 2", Station.Kind.PHLEBOTOMY, ("phlebotomy-chair", "vaccine-fridge")),
    StationSpec(
        "bay-1",
        "Treatment bay 1",
        Station.Kind.TREATMENT_BAY,
        ("exam-table", "nebulizer", "vaccine-fridge", "pulse-oximeter", "vision-chart"),
    ),
    StationSpec("bench-1", "Lab bench 1", Station.Kind.LAB_BENCH, ()),
    # Walk-in lab visits (tests only, no procedure): the past weeks' point-of-care work (seed.lab_history).
    StationSpec("walk-in-1", "Walk-in lab draw chair", Station.Kind.PHLEBOTOMY, ("phlebotomy-chair",)),
)
# Kept for the walk-in lab visits: today's demo handoffs are given the other stations.
WALK_IN_STATION = "walk-in-1"
# Patients are seated in these; the lab bench only takes specimens.
PATIENT_STATION_KINDS = (Station.Kind.PROCEDURE_ROOM, Station.Kind.PHLEBOTOMY, Station.Kind.TREATMENT_BAY)


# --- Orders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderTemplate:
    """What a clinician typically orders for one complaint, by CPT/HCPCS and LOINC code."""

    note: str
    procedures: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    sex: str = ""
    min_age: int = 0
    max_age: int = 200
    diagnoses: tuple[str, ...] = ()  # ICD-10-CM, billable


# The reason each template's orders are for (ICD-10-CM), sent to the reference lab with send-outs.
DIAGNOSES: dict[str, tuple[str, ...]] = {
    "chest_pain": ("R07.9",),
    "wheeze": ("R06.2",),
    "laceration": ("S61.412A",),
    "annual_labs": ("Z00.00",),
    "sore_throat": ("J02.9",),
    "cerumen": ("H61.23",),
    "diabetes": ("E11.9",),
    "uti": ("R30.0",),
    "flu": ("J11.1",),
    "b12": ("E53.8",),
    "flu_vaccine": ("Z23",),
    "inr": ("Z79.01",),
    "suture_removal": ("Z48.02",),
    "wound_check": ("Z48.00",),
    "fna": ("E04.1",),
    "tb": ("Z11.1",),
    "pregnancy": ("Z32.01",),
    "fatigue": ("R53.83",),
    "psa": ("Z12.5",),
    "spirometry": ("R05.3",),
    "vision": ("Z01.00",),
    "catheter": ("R33.9",),
}


TEMPLATES: dict[str, OrderTemplate] = {
    "chest_pain": OrderTemplate(
        "Intermittent chest tightness since this morning. 12-lead ECG now and vitals with SpO2; bring me the tracing.",
        procedures=("93000", "94760"),
        min_age=30,
    ),
    "wheeze": OrderTemplate(
        "Wheezing, SpO2 93% on room air. Albuterol nebulizer now, recheck sats after.",
        procedures=("94640", "94760"),
    ),
    "laceration": OrderTemplate(
        "2 cm laceration to the left forearm (kitchen knife), bleeding controlled. Repair with sutures; "
        "tetanus up to date.",
        procedures=("12001",),
    ),
    "annual_labs": OrderTemplate(
        "Annual physical, fasting since last night: CBC, CMP and lipid panel.",
        procedures=("36415",),
        tests=("58410-2", "24323-8", "24331-1"),
        min_age=18,
    ),
    "sore_throat": OrderTemplate(
        "Sore throat and fever for 3 days, no cough. Rapid strep.", tests=("78012-2",), max_age=60
    ),
    "cerumen": OrderTemplate(
        "Cerumen impaction both ears, hearing reduced on the right. Irrigate both sides.", procedures=("69209",)
    ),
    "diabetes": OrderTemplate(
        "Type 2 diabetes follow-up. Fingerstick glucose and A1c; results at checkout please.",
        tests=("41653-7", "4548-4"),
        min_age=18,
    ),
    "uti": OrderTemplate(
        "Dysuria and frequency for 2 days. Clean-catch urine: dipstick now, culture to send out.",
        tests=("24357-6", "630-4"),
    ),
    "flu": OrderTemplate(
        "Fever, cough and body aches since yesterday. Rapid COVID and flu A/B swabs.",
        tests=("94558-4", "80382-5", "80383-3"),
    ),
    "b12": OrderTemplate("Monthly vitamin B12 injection, 1000 mcg IM.", procedures=("96372",), min_age=18),
    "flu_vaccine": OrderTemplate(
        "Seasonal influenza vaccine; no egg allergy, consent signed.", procedures=("90471",), min_age=1
    ),
    "inr": OrderTemplate(
        "On warfarin for atrial fibrillation. Fingerstick INR; I'll adjust the dose today.",
        tests=("34714-6",),
        min_age=40,
    ),
    "suture_removal": OrderTemplate(
        "Suture removal, 10 days after repair of a scalp laceration. Check healing.", procedures=("S0630",)
    ),
    "wound_check": OrderTemplate(
        "Post-op wound check, right knee arthroscopy 5 days ago; history of MRSA. Change the dressing.",
        procedures=("99211",),
        min_age=18,
    ),
    "fna": OrderTemplate(
        "Palpable thyroid nodule, 1.8 cm on ultrasound. Ultrasound-guided FNA; I'll come in for it.",
        procedures=("10005",),
        min_age=18,
    ),
    "tb": OrderTemplate(
        "TB skin test for a new job at a nursing home. Reading in 48 to 72 hours.", procedures=("86580",), min_age=16
    ),
    "pregnancy": OrderTemplate(
        "Missed period, LMP 7 weeks ago. Urine hCG before any imaging.",
        tests=("2106-3",),
        sex=Patient.Sex.FEMALE,
        min_age=16,
        max_age=48,
    ),
    "fatigue": OrderTemplate(
        "Fatigue and breathless on stairs. Hemoglobin now; CBC and TSH to send out.",
        procedures=("36415",),
        tests=("718-7", "58410-2", "3016-3"),
        min_age=12,
    ),
    "psa": OrderTemplate(
        "PSA screening after shared decision-making.",
        procedures=("36415",),
        tests=("2857-1",),
        sex=Patient.Sex.MALE,
        min_age=50,
    ),
    "spirometry": OrderTemplate(
        "Chronic cough, former smoker. Spirometry before and after bronchodilator.", procedures=("94010",), min_age=18
    ),
    "vision": OrderTemplate("Sports physical: visual acuity screening.", procedures=("99173",), max_age=25),
    "ecg": OrderTemplate(
        "Palpitations since last week. 12-lead ECG; I'll read it before the patient leaves.",
        procedures=("93000",),
        min_age=18,
    ),
    "catheter": OrderTemplate(
        "Urinary retention, bladder scan 650 mL. Insert an indwelling catheter.",
        procedures=("51702",),
        sex=Patient.Sex.MALE,
        min_age=50,
    ),
}


for _key, _codes in DIAGNOSES.items():
    TEMPLATES[_key] = replace(TEMPLATES[_key], diagnoses=_codes)


# --- Competencies --------------------------------------------------------------------------------

# Who is signed off for what, by CPT/HCPCS code (the supervisor: everything). "ma2" is still training
# for venipuncture and IM injection: she performs them under supervision.
DEMO_COMPETENCIES: dict[str, tuple[str, ...]] = {
    "ma": ("69209", "36415", "96372", "90471", "99211", "S0630", "93000", "94640", "94760", "99173"),
    "ma2": ("69209", "99211", "94760", "99173"),
}
DEMO_TRAINING: dict[str, dict[str, int]] = {"ma2": {"36415": 3, "96372": 1}}


# --- Loading -------------------------------------------------------------------------------------


def demo_npi(index: int) -> str:
    """A made-up NPI with a valid check digit (Luhn over 80840 and the first nine digits)."""
    base = f"19{index:07d}"
    return base + luhn.calc_check_digit(f"80840{base}")


def demo_authenticator(user: User) -> bool:
    """Give a demo user whose role needs a second factor the demo key (put back if replaced); True if so.

    Without it, a newcomer signing in as the supervisor or the auditor would need to set up an app
    before seeing a page; with it, the printed key (or ``manage.py demo_code``) gives the code.
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice.accounts.auth import role_requires_second_factor

    if not role_requires_second_factor(user):
        return False
    key = demo_totp_key().hex()
    devices = TOTPDevice.objects.filter(user=user)
    if not devices.filter(key=key, confirmed=True).exists() or devices.exclude(key=key).exists():
        devices.delete()
        TOTPDevice.objects.create(user=user, name=DEMO_TOTP_DEVICE, key=key, confirmed=True)
    return True


def seed_staff(stdout: OutputWrapper) -> dict[str, User]:
    """Demo users for every role, with credentials; passwords are reset to the demo one."""
    groups = {g.name: g for g in Group.objects.filter(name__in=roles.ROLES)}
    missing = set(roles.ROLES) - groups.keys()
    if missing:
        raise CommandError(f"Role groups missing ({', '.join(sorted(missing))}); run migrate first.")
    today = timezone.localdate()
    users: dict[str, User] = {}
    for index, spec in enumerate(DEMO_USERS):
        user, created = User.objects.update_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "title": spec.title,
                "email": f"{spec.username}@clinic.example",
                # 555-01xx: fictional numbers; the lab calls them with critical results.
                "phone": f"(212) 555-01{40 + index:02d}",
                # Fictional NPIs (valid check digit) for those who order: a reference lab needs them.
                "npi": demo_npi(index) if spec.role == roles.ROLE_CLINICIAN else "",
                "is_active": True,
                "is_staff": spec.superuser,
                "is_superuser": spec.superuser,
            },
        )
        # The table printed at the end promises this password, so put it back if someone changed it.
        if created or not user.check_password(DEMO_PASSWORD):
            validate_password(DEMO_PASSWORD, user)
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.set([groups[spec.role]])
        demo_authenticator(user)
        for cred in spec.credentials:
            Credential.objects.update_or_create(
                kind=cred.kind,
                number=cred.number,
                defaults={
                    "user": user,
                    "issued_on": today - timedelta(days=cred.issued_days_ago),
                    "expires_on": today + timedelta(days=cred.expires_in_days),
                },
            )
        users[spec.username] = user
    stdout.write(f"Staff: {len(users)} demo users.")
    return users


def seed_competencies(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    """Sign-offs through the service; the supervisor's were signed by the practice's superuser."""
    catalog = {p.code: p for p in ProcedureType.objects.filter(is_active=True)}
    signers = {"supervisor": users["admin"], "ma": users["supervisor"], "ma2": users["supervisor"]}
    plan = {"supervisor": tuple(catalog), **DEMO_COMPETENCIES}
    signed = 0
    for username, codes in plan.items():
        for code in codes:
            if code not in catalog:
                continue
            current = Competency.objects.filter(user=users[username], procedure_type=catalog[code]).first()
            if current is None or not current.is_current():
                competency_sign_off(user=users[username], procedure_type=catalog[code], by=signers[username])
                signed += 1
    # Supervised practice from before the demo day: a count, as the service would have left it.
    for username, counts in DEMO_TRAINING.items():
        for code, count in counts.items():
            if code in catalog:
                Competency.objects.update_or_create(
                    user=users[username], procedure_type=catalog[code], defaults={"supervised_count": count}
                )
    stdout.write(f"Competencies: {signed} sign-offs recorded.")


def seed_rooms_and_stations(stdout: OutputWrapper) -> None:
    for name in EXAM_ROOMS:
        ExamRoom.objects.get_or_create(name=name)
    equipment = {e.code: e for e in Equipment.objects.all()}
    for spec in STATIONS:
        station, _ = Station.objects.update_or_create(
            code=spec.code, defaults={"name": spec.name, "kind": spec.kind, "is_active": True}
        )
        station.equipment.set([equipment[code] for code in spec.equipment if code in equipment])
    stdout.write(f"Rooms: {len(EXAM_ROOMS)} exam rooms, {len(STATIONS)} stations.")
