"""Load demo data for `make run`, or bulk volumes for benchmarks with `--scale`.

Demo data goes through the services (backoffice.services, procedures.services, lab.services), so
every handoff has the events a real one would have; afterwards only the timestamps of the demo rows
are moved back, so the queue shows realistic waiting times.

`--scale` bypasses the services and writes with COPY: closed historical handoffs plus plain
waiting/claimed ones, built to satisfy every database constraint. Skipping the services is
acceptable for benchmark data only; nothing else may write statuses this way.

Both modes are idempotent: they key on natural keys (username, MRN, station code, room name) and
on markers (fixed UUIDs for demo handoffs, the "S" MRN prefix for scale patients).
"""

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import pgtrigger
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg import sql

from backoffice import roles
from backoffice.models import (
    Credential,
    Equipment,
    ExamRoom,
    Handoff,
    HandoffEvent,
    Patient,
    Station,
    StationEvent,
    User,
)
from backoffice.services import (
    Needs,
    handoff_assign_station,
    handoff_cancel,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_start,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import HandoffStatus, Priority, StationState
from lab.models import TestDefinition, TestOrder
from lab.services import test_orders_add
from procedures.models import Competency, ProcedureEvent, ProcedureOrder, ProcedureType
from procedures.services import competency_sign_off, procedure_orders_add

DEMO_PASSWORD = "backoffice-demo-2026"  # noqa: S105 - public by design: printed after every run
DEMO_PATIENTS = 200
DEMO_MRN_START = 500001  # clear of the ranges the test factories use (M1xxxxx, M2xxxxx)
DEMO_SEED = 2026
# Demo handoffs get UUIDs derived from this namespace: a marker that they exist, and stable URLs.
DEMO_NAMESPACE = uuid.UUID("6f1c2a8e-0d7b-4d0c-9a51-3c2f5e8b7a10")

SCALE_MRN_PREFIX = "S"
SCALE_SEED = 7
SCALE_HISTORY_DAYS = 730
# Username prefix: (role, title, how many).
SCALE_STAFF = {
    "scale-ma": (roles.ROLE_MEDICAL_ASSISTANT, "Medical assistant", 20),
    "scale-clin": (roles.ROLE_CLINICIAN, "Physician", 15),
}

Action = HandoffEvent.Action


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
)
# Patients are seated in these; the lab bench only takes specimens.
PATIENT_STATION_KINDS = (Station.Kind.PROCEDURE_ROOM, Station.Kind.PHLEBOTOMY, Station.Kind.TREATMENT_BAY)


# --- Patients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamePool:
    """Names from one background, and the languages its patients may prefer over English."""

    weight: int
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    languages: tuple[str, ...] = ()
    non_english_share: float = 0.0
    feminine_suffix: str = ""


NAME_POOLS = (
    NamePool(
        44,
        female=(
            "Emily", "Sarah", "Jessica", "Ashley", "Megan", "Rachel", "Laura", "Hannah", "Olivia", "Emma",
            "Abigail", "Grace", "Katherine", "Margaret", "Dorothy", "Linda", "Patricia", "Barbara", "Susan",
            "Karen", "Nancy", "Deborah", "Brenda", "Amber", "Tiffany", "Shanice", "Keisha", "Imani", "Aaliyah",
            "Claire", "Molly", "Siobhan", "Ingrid", "Joan", "Beverly",
        ),
        male=(
            "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
            "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Steven", "Andrew", "Kevin", "Brian",
            "George", "Edward", "Ronald", "Timothy", "Jason", "Ryan", "Tyrone", "DeShawn", "Marcus", "Malik",
            "Connor", "Liam", "Patrick", "Walter", "Harold", "Eugene",
        ),
        family=(
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
            "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
            "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
            "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins",
            "Edwards", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed",
            "Bailey", "Bell", "Kelly", "Howard", "Ward", "Brooks", "Bennett", "Gray", "Hughes", "Price",
            "O'Brien", "O'Connor", "Sullivan", "McCarthy", "Fitzgerald", "Kowalski", "Nowak", "Schmidt",
            "Johansson", "Lindqvist", "Russo", "Esposito", "Romano", "Washington", "Jefferson", "Freeman",
        ),
    ),
    NamePool(
        20,
        female=(
            "María", "Guadalupe", "Rosa", "Ana", "Carmen", "Lucía", "Sofía", "Valentina", "Camila", "Isabel",
            "Daniela", "Gabriela", "Yesenia", "Marisol", "Leticia", "Alejandra",
        ),
        male=(
            "José", "Juan", "Luis", "Carlos", "Jorge", "Miguel", "Alejandro", "Javier", "Francisco", "Diego",
            "Santiago", "Mateo", "Ricardo", "Héctor", "Raúl", "Fernando",
        ),
        family=(
            "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez",
            "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Reyes", "Morales", "Cruz", "Ortiz", "Gutiérrez",
            "Chávez", "Ramos", "Vargas", "Castillo", "Jiménez", "Mendoza", "Ruiz", "Álvarez", "Romero",
        ),
        languages=("Spanish",),
        non_english_share=0.4,
    ),
    NamePool(
        6,
        female=("Linh", "Thảo", "Mai", "Hương", "Lan", "Ngọc", "Trang", "Hạnh"),
        male=("Minh", "Tuấn", "Huy", "Dũng", "Quang", "Khoa", "Bảo", "Thanh"),
        family=("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Vũ", "Võ", "Đặng", "Bùi"),
        languages=("Vietnamese",),
        non_english_share=0.45,
    ),
    NamePool(
        6,
        female=("Mei", "Xiuying", "Li Na", "Jing", "Yan", "Hui", "Xiaoling", "Fang"),
        male=("Wei", "Jun", "Hao", "Lei", "Ming", "Jian", "Qiang", "Tao"),
        family=("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Chan", "Wong"),
        languages=("Mandarin", "Mandarin", "Cantonese"),
        non_english_share=0.4,
    ),
    NamePool(
        5,
        female=("Fatima", "Layla", "Noor", "Amira", "Yasmin", "Mariam", "Rania", "Huda"),
        male=("Omar", "Ahmed", "Youssef", "Karim", "Tariq", "Khaled", "Hassan", "Samir"),
        family=("Haddad", "Khalil", "Hassan", "Ali", "Ibrahim", "Mansour", "Saleh", "Nasser", "Aziz", "Farouk"),
        languages=("Arabic",),
        non_english_share=0.4,
    ),
    NamePool(
        5,
        female=("Marie", "Nadège", "Guerline", "Fabiola", "Widline", "Mirlande", "Rose-Marie", "Stéphanie"),
        male=("Jean", "Wesley", "Frantz", "Jacques", "Pierre-Louis", "Wilner", "Fritz", "Emmanuel"),
        family=(
            "Jean-Baptiste", "Pierre", "Joseph", "Louis", "Charles", "Étienne", "Toussaint", "Désir",
            "Dorval", "Saint-Fleur",
        ),
        languages=("Haitian Creole", "Haitian Creole", "French"),
        non_english_share=0.45,
    ),
    NamePool(
        5,
        female=("Priya", "Anjali", "Sunita", "Kavya", "Deepa", "Aisha", "Neha", "Harpreet"),
        male=("Rahul", "Arjun", "Vikram", "Sanjay", "Ravi", "Imran", "Gurpreet", "Anil"),
        family=("Patel", "Shah", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Desai", "Khan", "Chowdhury"),
        languages=("Hindi", "Gujarati", "Punjabi", "Bengali"),
        non_english_share=0.15,
    ),
    NamePool(
        3,
        female=("Ji-woo", "Seo-yeon", "Min-seo", "Hye-jin", "Soo-ah"),
        male=("Min-jun", "Ji-hoon", "Seung-ho", "Dong-hyun", "Jae-won"),
        family=("Kim", "Park", "Lee", "Choi", "Jung", "Kang", "Yoon", "Han"),
        languages=("Korean",),
        non_english_share=0.3,
    ),
    NamePool(
        2,
        female=("Olga", "Natalia", "Svetlana", "Irina", "Yekaterina", "Tatiana"),
        male=("Dmitri", "Sergei", "Alexei", "Mikhail", "Ivan", "Nikolai"),
        family=("Ivanov", "Smirnov", "Kuznetsov", "Popov", "Volkov", "Sokolov", "Morozov", "Petrov"),
        languages=("Russian",),
        non_english_share=0.35,
        feminine_suffix="a",
    ),
    NamePool(
        2,
        female=("Chiamaka", "Ama", "Ngozi", "Adaeze", "Fatoumata", "Abena"),
        male=("Kwame", "Emeka", "Oluwaseun", "Kofi", "Mamadou", "Chinedu"),
        family=("Okafor", "Adeyemi", "Mensah", "Diallo", "Okonkwo", "Asante", "Balogun", "Traoré"),
        languages=("French", "Yoruba"),
        non_english_share=0.1,
    ),
    NamePool(
        2,
        female=("Ana", "Beatriz", "Juliana", "Fernanda", "Larissa", "Conceição"),
        male=("João", "Lucas", "Gabriel", "Rafael", "Thiago", "António"),
        family=("Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Ferreira", "Almeida"),
        languages=("Portuguese", "Cape Verdean Creole"),
        non_english_share=0.4,
    ),
    NamePool(
        2,
        female=("Hodan", "Asha", "Faadumo", "Sahra", "Ubah", "Ifrah"),
        male=("Abdirahman", "Mahad", "Abdullahi", "Guled", "Liban", "Bashir"),
        family=("Mohamed", "Abdi", "Hussein", "Warsame", "Farah", "Jama", "Egal", "Osman"),
        languages=("Somali",),
        non_english_share=0.5,
    ),
)  # fmt: skip
_POOL_CUM_WEIGHTS = tuple(sum(p.weight for p in NAME_POOLS[: i + 1]) for i in range(len(NAME_POOLS)))

ALLERGIES = (
    "Penicillin — hives",
    "Amoxicillin — rash",
    "Sulfa drugs — rash",
    "Latex",
    "Codeine — nausea and vomiting",
    "Aspirin — wheezing",
    "Ibuprofen — stomach upset",
    "Peanuts — anaphylaxis",
    "Shellfish — hives",
    "Eggs",
    "Iodinated contrast — hives",
    "Cephalexin — rash",
    "Morphine — itching",
    "Adhesive tape — skin blistering",
    "Bee stings — swelling",
    "Lisinopril — angioedema",
    "Ciprofloxacin — tendon pain",
    "Chlorhexidine — skin irritation",
)
AREA_CODES = ("617", "857", "781", "339", "508", "774", "978", "351")


def _rng(seed: int) -> random.Random:
    """A seeded generator: the same seed gives the same demo data on every machine."""
    return random.Random(seed)  # noqa: S311 - reproducible sample data, nothing secret


def _patient_fields(rng: random.Random, *, mrn: str, born_before: date) -> dict[str, Any]:
    """A plausible patient, the same for the same generator state: used by both modes."""
    pool = rng.choices(NAME_POOLS, cum_weights=_POOL_CUM_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.49:
        sex, given = Patient.Sex.FEMALE, rng.choice(pool.female)
    elif roll < 0.98:
        sex, given = Patient.Sex.MALE, rng.choice(pool.male)
    else:
        sex = Patient.Sex.OTHER if roll < 0.99 else Patient.Sex.UNKNOWN
        given = rng.choice(pool.female if rng.random() < 0.5 else pool.male)
    family = rng.choice(pool.family)
    if sex == Patient.Sex.FEMALE:
        family += pool.feminine_suffix
    language = "English"
    if pool.languages and rng.random() < pool.non_english_share:
        language = rng.choice(pool.languages)
    # A clinic sees adults mostly, children some: skew ages towards the middle years.
    age = int(rng.triangular(0, 96, 52))
    date_of_birth = born_before - timedelta(days=age * 365 + rng.randrange(1, 365))
    allergies = ""
    roll = rng.random()
    if roll < 0.3:
        count = 1 if roll < 0.21 else 2 if roll < 0.285 else 3
        allergies = "\n".join(rng.sample(ALLERGIES, count))
    # Most others were asked and have none; a few were never asked (blank, not NKA).
    no_known_allergies = not allergies and rng.random() < 0.85
    return {
        "mrn": mrn,
        "family_name": family,
        "given_name": given,
        "date_of_birth": date_of_birth,
        "sex": sex,
        "preferred_language": language,
        "interpreter_needed": language != "English",
        "allergies": allergies,
        "no_known_allergies": no_known_allergies,
        "phone": f"({rng.choice(AREA_CODES)}) 555-01{rng.randrange(100):02d}",  # 555-01xx: fictional numbers
    }


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
    "catheter": OrderTemplate(
        "Urinary retention, bladder scan 650 mL. Insert an indwelling catheter.",
        procedures=("51702",),
        sex=Patient.Sex.MALE,
        min_age=50,
    ),
}


# --- Demo handoffs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoHandoff:
    """One demo handoff: what was ordered, and how far the services take it."""

    template: str
    status: str
    minutes_ago: int = 0  # open ones: how long the patient has waited
    days_ago: int = 0  # closed ones
    priority: int = Priority.ROUTINE
    clinician: str = "clinician"
    creator: str = ""  # an MA entering the handoff on the clinician's behalf; blank: the clinician
    worker: str = ""
    station: str = ""
    identity: str = "wristband"
    needs: Needs = field(default_factory=Needs)
    cancel_from: str = HandoffStatus.WAITING
    cancelled_by: str = ""
    cancel_reason: str = ""
    ordered: bool = True  # closed demo handoffs order nothing: their items could not be closed through services
    leave_for_turnover: bool = False  # the room it closes in stays waiting for cleaning


W, C, IV, IP = HandoffStatus.WAITING, HandoffStatus.CLAIMED, HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS
STAT = Priority.STAT
Mob, Iso = Handoff.Mobility, Handoff.Isolation
INTERPRETER = Needs(interpreter_needed=True)

OPEN_HANDOFFS = (
    DemoHandoff("chest_pain", W, minutes_ago=4, priority=STAT),
    DemoHandoff("wheeze", W, minutes_ago=9, priority=STAT, needs=Needs(companion="Mother", mobility=Mob.WHEELCHAIR)),
    DemoHandoff("laceration", W, minutes_ago=2, priority=STAT, clinician="clinician2", creator="ma"),
    DemoHandoff("annual_labs", W, minutes_ago=38, needs=INTERPRETER),
    DemoHandoff("sore_throat", W, minutes_ago=31, needs=Needs(isolation=Iso.DROPLET)),
    DemoHandoff("cerumen", W, minutes_ago=27, needs=Needs(interpreter_needed=True, companion="Son")),
    DemoHandoff(
        "diabetes",
        W,
        minutes_ago=22,
        clinician="clinician2",
        needs=Needs(mobility=Mob.WHEELCHAIR, aide_needed=True),
    ),
    DemoHandoff("uti", W, minutes_ago=18),
    DemoHandoff("flu", W, minutes_ago=15, clinician="clinician2", needs=Needs(isolation=Iso.DROPLET)),
    DemoHandoff("b12", W, minutes_ago=12, needs=Needs(mobility=Mob.WALKER)),
    DemoHandoff("inr", W, minutes_ago=7, clinician="clinician2", needs=INTERPRETER),
    DemoHandoff("flu_vaccine", W, minutes_ago=3, creator="ma2", needs=Needs(companion="Daughter")),
    DemoHandoff("wound_check", C, minutes_ago=24, worker="ma", needs=Needs(isolation=Iso.CONTACT)),
    DemoHandoff("psa", C, minutes_ago=19, worker="ma2", clinician="clinician2"),
    DemoHandoff("pregnancy", C, minutes_ago=14, worker="ma", needs=INTERPRETER),
    DemoHandoff("fatigue", IV, minutes_ago=21, worker="ma2", station="phleb-2", identity="name+dob"),
    DemoHandoff("suture_removal", IV, minutes_ago=17, worker="ma", station="proc-2", needs=Needs(companion="Husband")),
    DemoHandoff("fna", IP, minutes_ago=33, worker="ma", station="proc-1", identity="name+dob"),
    DemoHandoff("tb", IP, minutes_ago=16, worker="ma2", station="phleb-1", clinician="clinician2"),
)

CANCELLED_HANDOFFS = (
    DemoHandoff(
        "vision",
        HandoffStatus.CANCELLED,
        days_ago=3,
        cancelled_by="clinician",
        cancel_reason="Patient left before being seen; will come back on Thursday.",
        ordered=False,
    ),
    DemoHandoff(
        "annual_labs",
        HandoffStatus.CANCELLED,
        days_ago=2,
        worker="ma",
        cancel_from=C,
        cancelled_by="supervisor",
        cancel_reason="Patient had eaten breakfast; fasting labs rebooked for next week.",
        ordered=False,
    ),
    DemoHandoff(
        "fatigue",
        HandoffStatus.CANCELLED,
        days_ago=1,
        worker="ma2",
        station="bay-1",
        cancel_from=IP,
        cancelled_by="supervisor",
        cancel_reason="Patient felt faint during the draw; stopped, observed, and rescheduled.",
        ordered=False,
    ),
)
COMPLETED_COUNT = 20

# Who is signed off for what, by CPT/HCPCS code (the supervisor: everything). "ma2" is still training
# for venipuncture and IM injection: she performs them under supervision.
DEMO_COMPETENCIES: dict[str, tuple[str, ...]] = {
    "ma": ("69209", "36415", "96372", "90471", "99211", "S0630", "93000", "94640", "94760", "99173"),
    "ma2": ("69209", "99211", "94760", "99173"),
}
DEMO_TRAINING: dict[str, dict[str, int]] = {"ma2": {"36415": 3, "96372": 1}}
TURNOVER_STATION = "proc-3"  # the last completed handoff leaves this room waiting for cleaning

_REACHED: dict[str, int] = {W: 0, C: 1, IV: 2, IP: 3}


# --- Scale rows ----------------------------------------------------------------------------------


class ScaleHandoff(NamedTuple):
    """What the event and item writers need to know about one generated handoff."""

    id: int
    status: str
    template: int
    created_at: datetime
    created_by: int
    ordering_clinician: int
    worker: int | None
    claimed_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    closed_by: int | None
    cancel_reason: str
    identity_method: str


SCALE_CANCEL_REASONS = (
    "Patient left before being seen.",
    "Clinician changed the plan.",
    "Ordered on the wrong visit; reordered.",
    "Patient declined the procedure.",
    "Rescheduled: patient had eaten before fasting labs.",
)


class Command(BaseCommand):
    help = "Load demo users, rooms, stations, patients and handoffs; with --scale, bulk data for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale", action="store_true", help="Bulk-load benchmark volumes (COPY) instead of the demo clinic day."
        )
        parser.add_argument("--patients", type=int, default=100_000, help="Scale patients (default 100,000).")
        parser.add_argument(
            "--handoffs", type=int, default=200_000, help="Scale historical handoffs (default 200,000)."
        )
        parser.add_argument("--open", type=int, default=500, help="Scale open handoffs (default 500).")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        with transaction.atomic():
            users = self._seed_staff()
            self._seed_rooms_and_stations()
            if options["scale"]:
                counts = {name: options[name] for name in ("patients", "handoffs", "open")}
                if min(counts.values()) < 0 or (counts["handoffs"] + counts["open"] and not counts["patients"]):
                    raise CommandError("Volumes must be zero or more, and handoffs need at least one patient.")
                self._seed_scale(
                    users=users, patients=counts["patients"], historical=counts["handoffs"], open_count=counts["open"]
                )
            else:
                self._seed_competencies(users=users)
                patients = self._seed_patients()
                self._seed_handoffs(users=users, patients=patients)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
        self._print_logins()

    # --- shared base ----------------------------------------------------------------------------

    def _seed_staff(self) -> dict[str, User]:
        """Demo users for every role, with credentials; passwords are reset to the demo one."""
        groups = {g.name: g for g in Group.objects.filter(name__in=roles.ROLES)}
        missing = set(roles.ROLES) - groups.keys()
        if missing:
            raise CommandError(f"Role groups missing ({', '.join(sorted(missing))}); run migrate first.")
        today = timezone.localdate()
        users: dict[str, User] = {}
        for spec in DEMO_USERS:
            user, created = User.objects.update_or_create(
                username=spec.username,
                defaults={
                    "first_name": spec.first_name,
                    "last_name": spec.last_name,
                    "title": spec.title,
                    "email": f"{spec.username}@clinic.example",
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
        self.stdout.write(f"Staff: {len(users)} demo users.")
        return users

    def _seed_competencies(self, *, users: dict[str, User]) -> None:
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
        self.stdout.write(f"Competencies: {signed} sign-offs recorded.")

    def _seed_rooms_and_stations(self) -> None:
        for name in EXAM_ROOMS:
            ExamRoom.objects.get_or_create(name=name)
        equipment = {e.code: e for e in Equipment.objects.all()}
        for spec in STATIONS:
            station, _ = Station.objects.update_or_create(
                code=spec.code, defaults={"name": spec.name, "kind": spec.kind, "is_active": True}
            )
            station.equipment.set([equipment[code] for code in spec.equipment if code in equipment])
        self.stdout.write(f"Rooms: {len(EXAM_ROOMS)} exam rooms, {len(STATIONS)} stations.")

    def _print_logins(self) -> None:
        roles_by_user = {u.username: u.role for u in DEMO_USERS}
        rows = [
            ("Username", "Role", "Password"),
            *((name, role, DEMO_PASSWORD) for name, role in roles_by_user.items()),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        self.stdout.write(self.style.SUCCESS("\nDemo logins:"))
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            self.stdout.write(f"  {self.style.MIGRATE_HEADING(line) if i == 0 else line}")

    # --- demo clinic day ------------------------------------------------------------------------

    def _seed_patients(self) -> list[Patient]:
        rng = _rng(DEMO_SEED)
        born_before = date(timezone.localdate().year, 1, 1)
        patients: list[Patient] = []
        created = 0
        for n in range(DEMO_PATIENTS):
            fields = _patient_fields(rng, mrn=f"M{DEMO_MRN_START + n}", born_before=born_before)
            patient, is_new = Patient.objects.get_or_create(mrn=fields.pop("mrn"), defaults=fields)
            patients.append(patient)
            created += is_new
        self.stdout.write(f"Patients: {created} created, {DEMO_PATIENTS - created} already there.")
        return patients

    def _seed_handoffs(self, *, users: dict[str, User], patients: list[Patient]) -> None:
        specs = self._demo_plan()
        keys = [uuid.uuid5(DEMO_NAMESPACE, f"demo-handoff-{n}") for n in range(len(specs))]
        if Handoff.objects.filter(uuid__in=keys).exists():
            self.stdout.write("Handoffs: demo handoffs already there; none added.")
            return
        now = timezone.now()
        picker = _PatientPicker(patients=patients, today=timezone.localdate())
        rooms = list(ExamRoom.objects.order_by("name"))
        stations = {s.code: s for s in Station.objects.all()}
        procedure_types = {p.code: p for p in ProcedureType.objects.filter(is_active=True)}
        tests = {t.loinc_code: t for t in TestDefinition.objects.filter(is_active=True)}
        rng = _rng(DEMO_SEED)
        for n, (spec, key) in enumerate(zip(specs, keys, strict=True)):
            template = TEMPLATES[spec.template]
            patient = picker.pick(template=template, interpreter=spec.needs.interpreter_needed)
            creator = users[spec.creator or spec.clinician]
            handoff = handoff_create(
                patient=patient,
                ordering_clinician=users[spec.clinician],
                exam_room=rooms[n % len(rooms)],
                priority=spec.priority,
                clinical_note=template.note,
                needs=spec.needs,
                by=creator,
            )
            if spec.ordered:
                chosen_procedures = [procedure_types[c] for c in template.procedures if c in procedure_types]
                chosen_tests = [tests[c] for c in template.tests if c in tests]
                if chosen_procedures:
                    procedure_orders_add(handoff=handoff, procedure_types=chosen_procedures, by=creator)
                if chosen_tests:
                    test_orders_add(handoff=handoff, tests=chosen_tests, by=creator)
            at = _demo_times(spec=spec, now=now, rng=rng)
            station_mark = StationEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            self._play(spec=spec, handoff=handoff, users=users, stations=stations)
            _backdate(handoff=handoff, key=key, at=at, station_mark=station_mark)
            _backdate_procedures(handoff=handoff, created=at[Action.CREATED])
        # A station's clock starts at its latest event, which the backdating moved.
        for station in Station.objects.all():
            latest = station.events.order_by("-at", "-pk").values_list("at", flat=True).first()
            if latest is not None:
                Station.objects.filter(pk=station.pk).update(state_changed_at=latest)
        by_status = dict(
            Handoff.objects.filter(uuid__in=keys).values_list("status").annotate(n=models.Count("pk")).order_by()
        )
        summary = ", ".join(f"{by_status.get(s.value, 0)} {s.label.lower()}" for s in HandoffStatus)
        self.stdout.write(f"Handoffs: {summary}.")

    # --- scale load -----------------------------------------------------------------------------

    def _seed_scale(self, *, users: dict[str, User], patients: int, historical: int, open_count: int) -> None:
        """Bulk rows for benchmarks, written with COPY in the surrounding transaction."""
        existing = Patient.objects.filter(mrn__startswith=SCALE_MRN_PREFIX).count()
        if existing:
            self.stdout.write(
                f"Scale data already present ({existing:,} patients with MRN prefix {SCALE_MRN_PREFIX!r}); "
                "nothing added."
            )
            return
        self.stdout.write(
            f"Scale load: {patients:,} patients, {historical:,} historical and {open_count:,} open handoffs…"
        )
        progress = _Progress(self)
        # COPY is not part of the DB-API; Django's wrapper hands us the psycopg cursor underneath.
        with connection.cursor() as wrapper:
            # Django's foreign keys are deferred to COMMIT; checking them as rows arrive keeps the
            # progress lines honest instead of a silent pause at the end.
            wrapper.execute("SET CONSTRAINTS ALL IMMEDIATE")
            writer = _ScaleWriter(cursor=wrapper.cursor, rng=_rng(SCALE_SEED), now=timezone.now(), users=users)
            progress.step("patients", writer.patients(patients))
            progress.step("handoffs", writer.handoff_rows(historical=historical, open_count=open_count))
            procedure_count, test_count = writer.item_rows()
            progress.step("procedure/test orders", procedure_count + test_count)
            progress.step("handoff events", writer.event_rows())
            # Fresh statistics, so the first benchmark queries don't plan against empty tables.
            tables = [m._meta.db_table for m in (Patient, Handoff, HandoffEvent, ProcedureOrder, TestOrder)]
            wrapper.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
            progress.step("analyze", 0)

    @staticmethod
    def _demo_plan() -> list[DemoHandoff]:
        """Closed ones first, oldest first, so event ids run with time; then today's open work."""
        templates = [k for k in TEMPLATES if k not in {"catheter", "fna"}]
        workers = ("ma", "ma2", "ma", "ma2", "supervisor")
        patient_stations = [s.code for s in STATIONS if s.kind in PATIENT_STATION_KINDS and s.code != TURNOVER_STATION]
        completed = [
            DemoHandoff(
                templates[n % len(templates)],
                HandoffStatus.COMPLETED,
                days_ago=max(0, 12 - n * 12 // (COMPLETED_COUNT - 1)),
                clinician="clinician" if n % 3 else "clinician2",
                worker=workers[n % len(workers)],
                station=TURNOVER_STATION if n == COMPLETED_COUNT - 1 else patient_stations[n % len(patient_stations)],
                leave_for_turnover=n == COMPLETED_COUNT - 1,
                identity="wristband" if n % 4 else "name+dob",
                priority=STAT if n % 7 == 3 else Priority.ROUTINE,
                ordered=False,
            )
            for n in range(COMPLETED_COUNT)
        ]
        closed = sorted([*completed, *CANCELLED_HANDOFFS], key=lambda s: -s.days_ago)
        return [*closed, *OPEN_HANDOFFS]

    def _play(
        self,
        *,
        spec: DemoHandoff,
        handoff: Handoff,
        users: dict[str, User],
        stations: dict[str, Station],
    ) -> None:
        """Move a new handoff through the services to the state its spec asks for."""
        if spec.status == HandoffStatus.CANCELLED:
            reach = _REACHED[spec.cancel_from]
        elif spec.status == HandoffStatus.COMPLETED:
            reach = _REACHED[IP]
        else:
            reach = _REACHED[spec.status]
        worker = users[spec.worker] if spec.worker else None
        if reach >= _REACHED[C] and worker is not None:
            handoff_claim(handoff=handoff, by=worker)
            if spec.station:
                station = _ready_station(stations=stations, preferred=spec.station)
                handoff_assign_station(handoff=handoff, station=station, by=worker)
            if reach >= _REACHED[IV]:
                patient = handoff.patient
                if spec.identity == "wristband":
                    handoff_verify_identity(handoff=handoff, by=worker, scanned_mrn=patient.mrn)
                else:
                    handoff_verify_identity(
                        handoff=handoff, by=worker, full_name=patient.full_name, date_of_birth=patient.date_of_birth
                    )
            if reach >= _REACHED[IP]:
                handoff_start(handoff=handoff, by=worker)
        if spec.status == HandoffStatus.COMPLETED and worker is not None:
            handoff_complete(handoff=handoff, by=worker)
        elif spec.status == HandoffStatus.CANCELLED:
            handoff_cancel(handoff=handoff, by=users[spec.cancelled_by], reason=spec.cancel_reason)
        # Rooms of past work were cleaned long ago; one is left for the demo user to turn over.
        if handoff.station is not None and not handoff.is_open and not spec.leave_for_turnover:
            station_turnover(station=handoff.station, by=worker or users["ma"])


class _PatientPicker:
    """Hands out each demo patient once, matching the order's sex, age and interpreter need."""

    def __init__(self, *, patients: Sequence[Patient], today: date) -> None:
        self._patients = list(patients)
        self._used: set[int] = set()
        self._today = today

    def pick(self, *, template: OrderTemplate, interpreter: bool) -> Patient:
        for patient in self._patients:
            if patient.pk in self._used or patient.interpreter_needed != interpreter:
                continue
            if template.sex and patient.sex != template.sex:
                continue
            if not template.min_age <= patient.age_on(self._today) <= template.max_age:
                continue
            self._used.add(patient.pk)
            return patient
        raise CommandError(f"No demo patient left for {template.note[:40]!r}.")


def _ready_station(*, stations: dict[str, Station], preferred: str) -> Station:
    """The preferred station, or any ready patient station if someone is using it already."""
    choice = Station.objects.get(pk=stations[preferred].pk)
    if choice.state == StationState.READY and choice.is_active:
        return choice
    fallback = (
        Station.objects.filter(state=StationState.READY, is_active=True, kind__in=PATIENT_STATION_KINDS)
        .order_by("code")
        .first()
    )
    if fallback is None:
        raise CommandError("No ready station left for the demo handoffs; turn some over and run again.")
    return fallback


def _demo_times(*, spec: DemoHandoff, now: datetime, rng: random.Random) -> dict[str, datetime]:
    """When each step of a demo handoff should appear to have happened."""
    if spec.minutes_ago:
        created = now - timedelta(minutes=spec.minutes_ago, seconds=rng.randrange(60))
        # Open work: each step a share of the time since the handoff, so none lies in the future.
        age = now - created
        return {
            Action.CREATED: created,
            Action.CLAIMED: created + age * 0.45,
            Action.STATION_ASSIGNED: created + age * 0.55,
            Action.IDENTITY_VERIFIED: created + age * 0.65,
            Action.STARTED: created + age * 0.8,
        }
    if spec.days_ago:
        day = timezone.localtime(now).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=spec.days_ago)
        created = day + timedelta(minutes=rng.randrange(0, 480), seconds=rng.randrange(60))
    else:
        # Earlier today: recent enough that the room it left is still waiting to be cleaned.
        created = now - timedelta(minutes=70 + rng.randrange(20))
    claimed = created + timedelta(minutes=rng.randrange(3, 18))
    verified = claimed + timedelta(minutes=3)
    started = verified + timedelta(minutes=1)
    closed = started + timedelta(minutes=rng.randrange(8, 30))
    if spec.status == HandoffStatus.CANCELLED and spec.cancel_from == W:
        closed = created + timedelta(minutes=rng.randrange(10, 40))
    elif spec.status == HandoffStatus.CANCELLED and spec.cancel_from == C:
        closed = claimed + timedelta(minutes=4)
    closing = Action.COMPLETED if spec.status == HandoffStatus.COMPLETED else Action.CANCELLED
    return {
        Action.CREATED: created,
        Action.CLAIMED: claimed,
        Action.STATION_ASSIGNED: claimed + timedelta(minutes=2),
        Action.IDENTITY_VERIFIED: verified,
        Action.STARTED: started,
        closing: closed,
        "turnover": closed + timedelta(minutes=rng.randrange(4, 12)),
    }


def _backdate(*, handoff: Handoff, key: uuid.UUID, at: dict[str, datetime], station_mark: int) -> None:
    """Move a demo handoff, its items and events back in time; also gives it its marker UUID.

    Seed data only: the rows were written by the services a moment ago, and only their times change.
    """
    row = Handoff.objects.get(pk=handoff.pk)
    closing = at.get(Action.COMPLETED) or at.get(Action.CANCELLED)
    Handoff.objects.filter(pk=handoff.pk).update(
        uuid=key,
        created_at=at[Action.CREATED],
        claimed_at=at[Action.CLAIMED] if row.claimed_at else None,
        identity_verified_at=at[Action.IDENTITY_VERIFIED] if row.identity_verified_at else None,
        closed_at=closing if row.closed_at else None,
    )
    ProcedureOrder.objects.filter(handoff=handoff).update(created_at=at[Action.CREATED])
    TestOrder.objects.filter(handoff=handoff).update(created_at=at[Action.CREATED])
    station_times = {
        StationState.OCCUPIED: at.get(Action.STATION_ASSIGNED),
        StationState.NEEDS_TURNOVER: closing,
        StationState.READY: at.get("turnover"),
    }
    # Event rows are append-only: a trigger refuses UPDATE. Only this seed, on rows it wrote a moment
    # ago, lifts that for its own connection (pgtrigger.ignore sets a transaction-local flag the
    # trigger reads); no code path serving users does.
    with pgtrigger.ignore("backoffice.HandoffEvent:append_only", "backoffice.StationEvent:append_only"):
        for action, when in at.items():
            HandoffEvent.objects.filter(handoff=handoff, action=action).update(at=when)
        for state, moved_at in station_times.items():
            if moved_at is not None:
                StationEvent.objects.filter(pk__gt=station_mark, to_state=state).update(at=moved_at)


def _backdate_procedures(*, handoff: Handoff, created: datetime) -> None:
    """Move a demo handoff's procedure orders and their "ordered" events back with the handoff."""
    ProcedureOrder.objects.filter(handoff=handoff, status=ProcedureOrder.Status.ORDERED).update(
        status_changed_at=created
    )
    # Seed data only, on rows written a moment ago, as _backdate does for the handoff's events.
    with pgtrigger.ignore("procedures.ProcedureEvent:append_only"):
        ProcedureEvent.objects.filter(order__handoff=handoff, action=ProcedureEvent.Action.ORDERED).update(at=created)


# --- scale load ----------------------------------------------------------------------------------


def _reserve_ids(cursor: Any, *, model: type[models.Model], count: int) -> list[int]:
    """Take ids from the table's own sequence, so rows written later by the app never collide."""
    pk = model._meta.pk
    assert pk is not None
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [model._meta.db_table, pk.column, count],
    )
    return sorted(row[0] for row in cursor.fetchall())


def _copy(cursor: Any, *, model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into a model's table; columns not given get the model's defaults, as Model() would."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = set(columns) - fields.keys()
    if unknown:
        raise CommandError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}.")
    rest = [f for f in model._meta.concrete_fields if f.attname not in columns and not f.primary_key]
    per_row = [f for f in rest if f.has_default() and callable(f.default)]
    fixed = [f for f in rest if f not in per_row]
    fixed_values = tuple(f.get_default() for f in fixed)
    # A column added later without a default would fail deep inside COPY; say which one instead.
    unfillable = [f.name for f, v in zip(fixed, fixed_values, strict=True) if v is None and not f.null]
    if unfillable:
        raise CommandError(f"The scale loader doesn't fill {model.__name__}.{', '.join(unfillable)}; add it.")
    names = [fields[c].column for c in columns] + [f.column for f in (*fixed, *per_row)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(str(name)) for name in names)
    )
    defaults: list[Callable[[], Any]] = [f.get_default for f in per_row]
    count = 0
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row((*row, *fixed_values, *(make() for make in defaults)))
            count += 1
    return count


class _Progress:
    """Prints one line per table with its row count and time."""

    def __init__(self, command: BaseCommand) -> None:
        self._command = command
        self._started = time.monotonic()

    def step(self, label: str, count: int) -> None:
        elapsed = time.monotonic() - self._started
        self._command.stdout.write(f"  {label:<22} {count:>10,} rows  ({elapsed:5.1f}s)")
        self._command.stdout.flush()
        self._started = time.monotonic()


def _seed_scale_staff() -> tuple[list[int], list[int]]:
    """Extra MAs and clinicians so scale work spreads over realistic staff; they cannot log in."""
    ids: dict[str, list[int]] = {}
    rng = _rng(SCALE_SEED + 1)
    born_before = date(timezone.localdate().year, 1, 1)
    for prefix, (role, title, count) in SCALE_STAFF.items():
        group = Group.objects.get(name=role)
        ids[role] = []
        for n in range(1, count + 1):
            # Staff names come from the same pools as patients' names.
            person = _patient_fields(rng, mrn="", born_before=born_before)
            user, created = User.objects.get_or_create(
                username=f"{prefix}-{n:02d}",
                defaults={"first_name": person["given_name"], "last_name": person["family_name"], "title": title},
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(group)
            ids[role].append(user.pk)
    return ids[roles.ROLE_MEDICAL_ASSISTANT], ids[roles.ROLE_CLINICIAN]


def _scale_patients(
    rng: random.Random, *, ids: Sequence[int], now: datetime, interpreter_language: list[str]
) -> Iterator[tuple[Any, ...]]:
    born_before = date(timezone.localdate().year, 1, 1)
    for n, pk in enumerate(ids, start=1):
        f = _patient_fields(rng, mrn=f"{SCALE_MRN_PREFIX}{n:07d}", born_before=born_before)
        interpreter_language.append(f["preferred_language"] if f["interpreter_needed"] else "")
        yield (
            pk,
            f["mrn"],
            f["family_name"],
            f["given_name"],
            f["date_of_birth"],
            f["sex"],
            f["preferred_language"],
            f["interpreter_needed"],
            f["allergies"],
            f["no_known_allergies"],
            f["phone"],
            now - timedelta(days=rng.randrange(1, 3650)),
        )


PATIENT_COLUMNS = (
    "id",
    "mrn",
    "family_name",
    "given_name",
    "date_of_birth",
    "sex",
    "preferred_language",
    "interpreter_needed",
    "allergies",
    "no_known_allergies",
    "phone",
    "created_at",
)
HANDOFF_COLUMNS = (
    "id",
    "patient_id",
    "ordering_clinician_id",
    "exam_room_id",
    "priority",
    "clinical_note",
    "interpreter_needed",
    "interpreter_language",
    "companion",
    "aide_needed",
    "mobility",
    "isolation",
    "status",
    "station_id",
    "claimed_by_id",
    "claimed_at",
    "identity_verified_at",
    "identity_verified_by_id",
    "identity_method",
    "closed_at",
    "cancel_reason",
    "created_at",
    "created_by_id",
    "version",
)
EVENT_COLUMNS = ("handoff_id", "at", "actor_id", "action", "from_status", "to_status", "note")
PROCEDURE_ORDER_COLUMNS = (
    "handoff_id",
    "procedure_type_id",
    "status",
    "created_at",
    "created_by_id",
    "status_changed_at",
    "not_done_reason",
)
TEST_ORDER_COLUMNS = ("handoff_id", "test_id", "status", "created_at", "created_by_id")
_VERSION = {HandoffStatus.WAITING: 1, HandoffStatus.CLAIMED: 2, HandoffStatus.CANCELLED: 2, HandoffStatus.COMPLETED: 5}


class _ScaleWriter:
    """Generates and COPYs the scale rows; one instance per run, all in the caller's transaction."""

    def __init__(self, *, cursor: Any, rng: random.Random, now: datetime, users: dict[str, User]) -> None:
        self.cursor = cursor
        self.rng = rng
        self.now = now
        scale_mas, scale_clinicians = _seed_scale_staff()
        self.workers = [users["ma"].pk, users["ma2"].pk, *scale_mas]
        self.clinicians = [users["clinician"].pk, users["clinician2"].pk, *scale_clinicians]
        # The created event names the clinician when someone else entered the handoff, as the service does.
        self.names = {u.pk: str(u) for u in User.objects.filter(pk__in=[*self.clinicians])}
        self.cancellers = [users["supervisor"].pk, *self.clinicians]
        self.rooms = list(ExamRoom.objects.values_list("pk", flat=True))
        # Closed handoffs name the room they were done in; with no stations at all, none.
        self.stations: list[int | None] = [
            *Station.objects.filter(kind__in=PATIENT_STATION_KINDS).values_list("pk", flat=True)
        ] or [None]
        procedure_ids = dict(ProcedureType.objects.filter(is_active=True).values_list("code", "pk"))
        test_ids = dict(TestDefinition.objects.filter(is_active=True).values_list("loinc_code", "pk"))
        # Per template: its note and its items as ("p"|"t", id), keeping only what the catalog offers.
        self.templates: list[tuple[str, list[tuple[str, int]]]] = []
        for template in TEMPLATES.values():
            items = [("p", procedure_ids[c]) for c in template.procedures if c in procedure_ids]
            items += [("t", test_ids[c]) for c in template.tests if c in test_ids]
            if items:
                self.templates.append((template.note, items))
        if not self.templates:
            raise CommandError("The procedure and test catalogs are empty; run migrate first.")
        self.patient_ids: list[int] = []
        self.patient_language: list[str] = []
        self.handoffs: list[ScaleHandoff] = []

    def patients(self, count: int) -> int:
        self.patient_ids = _reserve_ids(self.cursor, model=Patient, count=count)
        rows = _scale_patients(self.rng, ids=self.patient_ids, now=self.now, interpreter_language=self.patient_language)
        return _copy(self.cursor, model=Patient, columns=PATIENT_COLUMNS, rows=rows)

    def handoff_rows(self, *, historical: int, open_count: int) -> int:
        rng, now = self.rng, self.now
        ids = _reserve_ids(self.cursor, model=Handoff, count=historical + open_count)
        midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        # Clinic hours, 08:00 to 17:30, over the past two years; sorted so ids rise with time as in real use.
        history = sorted(
            midnight - timedelta(days=rng.randint(1, SCALE_HISTORY_DAYS), minutes=-480 - rng.randrange(570))
            for _ in range(historical)
        )
        recent = sorted(
            now - timedelta(minutes=rng.randrange(1, 240), seconds=rng.randrange(60)) for _ in range(open_count)
        )
        open_patients = (
            rng.sample(range(len(self.patient_ids)), open_count)
            if open_count <= len(self.patient_ids)
            else [rng.randrange(len(self.patient_ids)) for _ in range(open_count)]
        )
        plan = [(created, None) for created in history] + list(zip(recent, open_patients, strict=True))
        rows = (
            self._handoff(pk=pk, created=created, patient_index=index)
            for pk, (created, index) in zip(ids, plan, strict=True)
        )
        return _copy(self.cursor, model=Handoff, columns=HANDOFF_COLUMNS, rows=rows)

    def _handoff(self, *, pk: int, created: datetime, patient_index: int | None) -> tuple[Any, ...]:
        rng = self.rng
        historical = patient_index is None
        index = rng.randrange(len(self.patient_ids)) if patient_index is None else patient_index
        language = self.patient_language[index]
        clinician = rng.choice(self.clinicians)
        creator = clinician if rng.random() < 0.8 else rng.choice(self.workers)
        template = rng.randrange(len(self.templates))
        worker = claimed = verified = closed = closer = station = None
        method = reason = ""
        if historical:
            status = HandoffStatus.COMPLETED if rng.random() < 0.92 else HandoffStatus.CANCELLED
        else:
            status = HandoffStatus.WAITING if rng.random() < 0.7 else HandoffStatus.CLAIMED
        if status == HandoffStatus.CANCELLED:
            closed = created + timedelta(minutes=rng.randrange(5, 60))
            closer = rng.choice(self.cancellers)
            reason = rng.choice(SCALE_CANCEL_REASONS)
        elif status != HandoffStatus.WAITING:
            worker = rng.choice(self.workers)
            claimed = created + timedelta(minutes=rng.randrange(1, 25), seconds=rng.randrange(60))
            if status == HandoffStatus.CLAIMED:
                claimed = min(claimed, self.now)
            else:
                verified = claimed + timedelta(minutes=rng.randrange(1, 6))
                closed = verified + timedelta(minutes=rng.randrange(5, 45))
                closer = worker
                method = "wristband" if rng.random() < 0.7 else "name+dob"
                station = rng.choice(self.stations)
        self.handoffs.append(
            ScaleHandoff(
                pk,
                status,
                template,
                created,
                creator,
                clinician,
                worker,
                claimed,
                verified,
                closed,
                closer,
                reason,
                method,
            )
        )
        return (
            pk,
            self.patient_ids[index],
            clinician,
            rng.choice(self.rooms),
            Priority.STAT if rng.random() < 0.12 else Priority.ROUTINE,
            self.templates[template][0],
            bool(language),
            language,
            "",
            False,
            Handoff.Mobility.INDEPENDENT,
            Handoff.Isolation.NONE,
            status,
            station,
            worker,
            claimed,
            verified,
            worker if verified else None,
            method,
            closed,
            reason,
            created,
            creator,
            _VERSION[status],
        )

    def item_rows(self) -> tuple[int, int]:
        procedures: list[tuple[Any, ...]] = []
        tests: list[tuple[Any, ...]] = []
        rng = self.rng
        for h in self.handoffs:
            items = self.templates[h.template][1]
            for kind, item_id in rng.sample(items, rng.randint(1, min(2, len(items)))):
                if kind == "p":
                    status = _procedure_status(h.status, rng)
                    # A not-done procedure names why (a database constraint); closed history changed at closing.
                    reason = "deferred" if status == ProcedureOrder.Status.NOT_DONE else ""
                    changed = h.closed_at or h.created_at
                    procedures.append((h.id, item_id, status, h.created_at, h.created_by, changed, reason))
                else:
                    tests.append((h.id, item_id, _test_status(h.status, rng), h.created_at, h.created_by))
        return (
            _copy(self.cursor, model=ProcedureOrder, columns=PROCEDURE_ORDER_COLUMNS, rows=procedures),
            _copy(self.cursor, model=TestOrder, columns=TEST_ORDER_COLUMNS, rows=tests),
        )

    def event_rows(self) -> int:
        return _copy(self.cursor, model=HandoffEvent, columns=EVENT_COLUMNS, rows=self._events())

    def _events(self) -> Iterator[tuple[Any, ...]]:
        for h in self.handoffs:
            note = "" if h.created_by == h.ordering_clinician else f"On behalf of {self.names[h.ordering_clinician]}"
            yield (h.id, h.created_at, h.created_by, Action.CREATED, "", W, note)
            if h.status == HandoffStatus.CANCELLED:
                yield (h.id, h.closed_at, h.closed_by, Action.CANCELLED, W, h.status, h.cancel_reason)
            if h.worker is None:
                continue
            yield (h.id, h.claimed_at, h.worker, Action.CLAIMED, W, C, "")
            if h.verified_at is None or h.closed_at is None:
                continue
            checked = "Wristband scanned" if h.identity_method == "wristband" else "Name and date of birth confirmed"
            yield (h.id, h.verified_at, h.worker, Action.IDENTITY_VERIFIED, C, IV, checked)
            yield (h.id, h.verified_at + timedelta(minutes=1), h.worker, Action.STARTED, IV, IP, "")
            yield (h.id, h.closed_at, h.worker, Action.COMPLETED, IP, HandoffStatus.COMPLETED, "")


def _procedure_status(status: str, rng: random.Random) -> str:
    if status == HandoffStatus.COMPLETED:
        return ProcedureOrder.Status.COMPLETED if rng.random() < 0.96 else ProcedureOrder.Status.NOT_DONE
    if status == HandoffStatus.CANCELLED:
        return ProcedureOrder.Status.NOT_DONE
    return ProcedureOrder.Status.ORDERED


def _test_status(status: str, rng: random.Random) -> str:
    if status == HandoffStatus.COMPLETED:
        return TestOrder.Status.RESULTED if rng.random() < 0.97 else TestOrder.Status.CANCELLED
    if status == HandoffStatus.CANCELLED:
        return TestOrder.Status.CANCELLED
    return TestOrder.Status.ORDERED
