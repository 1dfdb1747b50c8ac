"""Factories build plain rows; to reach a workflow state, call the services in order."""

import datetime as dt

import factory
from django.contrib.auth.models import Group

from backoffice import roles
from backoffice.models import Credential, ExamRoom, Handoff, Patient, Station, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@clinic.test")
    password = factory.django.Password("correct-horse-battery-staple")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential

    user = factory.SubFactory(UserFactory)
    kind = Credential.Kind.CMA
    number = factory.Sequence(lambda n: f"CMA-{100000 + n}")
    expires_on = factory.LazyFunction(lambda: dt.date.today() + dt.timedelta(days=365))


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"M{200000 + n}")
    family_name = factory.Faker("last_name")
    given_name = factory.Faker("first_name")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=1, maximum_age=95)
    sex = Patient.Sex.FEMALE
    preferred_language = "English"


class ExamRoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExamRoom
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Exam {n + 1}")


class StationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Station
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"proc-{n + 1}")
    name = factory.Sequence(lambda n: f"Procedure room {n + 1}")
    kind = Station.Kind.PROCEDURE_ROOM


def clinician_user(**kwargs: object) -> User:
    return UserFactory(role=roles.ROLE_CLINICIAN, **kwargs)


class HandoffFactory(factory.django.DjangoModelFactory):
    """A waiting handoff row; move it on with backoffice.services."""

    class Meta:
        model = Handoff

    patient = factory.SubFactory(PatientFactory)
    ordering_clinician = factory.LazyFunction(clinician_user)
    exam_room = factory.SubFactory(ExamRoomFactory)
    created_by = factory.SelfAttribute("ordering_clinician")


def medication(name: str, strength: str, *, ingredients: tuple[str, ...] = (), **fields: object):  # type: ignore[no-untyped-def]
    """A catalog drug (procedures.models.Medication) made of the migration's seeded ingredients."""
    from backoffice.models import Ingredient
    from procedures.models import Medication

    defaults: dict[str, object] = {"form": "solution", "routes": ["IM", "SC", "LOCAL", "INH", "ID"]}
    defaults.update(fields)
    product, _ = Medication.objects.get_or_create(name=name, strength=strength, defaults=defaults)
    product.ingredients.set(Ingredient.objects.filter(name__in=ingredients or (name.lower(),)))
    return product
