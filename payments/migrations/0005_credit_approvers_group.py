from django.contrib.auth.management import create_permissions
from django.db import migrations

from payments.permissions import CREDIT_APPROVERS, credit_approvers_group


def create_credit_approvers(apps, schema_editor):
    # Permissions are normally created after all migrations ran; this group
    # needs them now. create_permissions skips app configs without a models
    # module, which historical app configs lack.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    credit_approvers_group(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def delete_credit_approvers(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=CREDIT_APPROVERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sellers", "0001_initial"),
        ("payments", "0004_creditrequest_approve_permission"),
    ]

    operations = [migrations.RunPython(create_credit_approvers, delete_credit_approvers)]
