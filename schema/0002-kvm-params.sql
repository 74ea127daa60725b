-- kvmfleet inventory, version 2: the KVM module parameters the operator wants (PUT /v1/host/kvm/params),
-- applied by kvmfleet-load --reload (POST /v1/host/kvm/reload).

CREATE TABLE kvm_params_desired (
        module TEXT NOT NULL CHECK (module IN ('kvm', 'kvm_intel', 'kvm_amd')),
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        set_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        PRIMARY KEY (module, name)
);
