"""What the demo clinic day and the scale load share: seeded generators, patients' names and fields,
and short names for the handoff statuses and event actions."""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from backoffice.models import HandoffEvent, Patient
from backoffice.workflow import HandoffStatus

Action = HandoffEvent.Action
W, C, IV, IP = HandoffStatus.WAITING, HandoffStatus.CLAIMED, HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS


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


def seeded_rng(seed: int) -> random.Random:
    """A seeded generator: the same seed gives the same demo data on every machine."""
    return random.Random(seed)  # noqa: S311 - reproducible sample data, nothing secret


def patient_fields(rng: random.Random, *, mrn: str, born_before: date) -> dict[str, Any]:
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
