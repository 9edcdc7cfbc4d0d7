--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE event (
    id integer NOT NULL,
    patient_id character varying NOT NULL,
    seq integer NOT NULL,
    kind character varying NOT NULL,
    effective_date date NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    "user" character varying NOT NULL,
    reason character varying,
    payload text NOT NULL,
    corrects_id integer,
    dedup_key character varying
);


--
-- Name: event_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: event_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE event_id_seq OWNED BY event.id;


--
-- Name: patient; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE patient (
    id character varying NOT NULL,
    protocol_version_id integer NOT NULL,
    phase character varying NOT NULL,
    enrolled_on date NOT NULL,
    day0 date,
    phase_entered_on date NOT NULL,
    dose_mg_per_day double precision,
    next_due date,
    valid_from date,
    last_seq integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: protocol_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE protocol_version (
    id integer NOT NULL,
    study_id character varying NOT NULL,
    version character varying NOT NULL,
    content_hash character varying NOT NULL,
    yaml_text text NOT NULL,
    source_file character varying NOT NULL,
    registered_at timestamp with time zone NOT NULL,
    registered_by character varying NOT NULL,
    reason character varying NOT NULL
);


--
-- Name: protocol_version_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE protocol_version_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: protocol_version_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE protocol_version_id_seq OWNED BY protocol_version.id;


--
-- Name: store_info; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE store_info (
    key character varying NOT NULL,
    value character varying NOT NULL
);


--
-- Name: work_item; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE work_item (
    id integer NOT NULL,
    patient_id character varying NOT NULL,
    action character varying NOT NULL,
    visit character varying,
    target_date date NOT NULL,
    window_start date NOT NULL,
    window_end date,
    opens date NOT NULL,
    clock character varying NOT NULL,
    reason character varying NOT NULL,
    detail character varying NOT NULL,
    waiting_detail character varying
);


--
-- Name: work_item_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE work_item_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: work_item_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE work_item_id_seq OWNED BY work_item.id;


--
-- Name: event id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY event ALTER COLUMN id SET DEFAULT nextval('event_id_seq'::regclass);


--
-- Name: protocol_version id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY protocol_version ALTER COLUMN id SET DEFAULT nextval('protocol_version_id_seq'::regclass);


--
-- Name: work_item id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY work_item ALTER COLUMN id SET DEFAULT nextval('work_item_id_seq'::regclass);


--
-- Data for Name: event; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO event VALUES (1, 'P-001', 1, 'enrolled', '2025-12-29', '2026-12-01 23:53:14.3884+00', 'coordinator.anna', NULL, '{"eligibility": {"adult": "yes", "dtc_histology": "yes", "evaluable_disease": "yes", "informed_consent": "yes", "medullary_or_anaplastic": "no", "pregnancy_or_lactation": "no", "prior_tki": "no", "rai_refractory": "yes", "recurrence_or_metastases": "yes", "uncontrolled_hypertension": "no"}, "eligible": true, "phase": "screening", "protocol_hash": "f3b9012ee405ac17dd4afc8ffec1cb525def15d6ed39631ec8c5f365ce377f75", "protocol_version": "1.0", "unmet": []}', NULL, NULL);
INSERT INTO event VALUES (2, 'P-001', 2, 'phase_changed', '2026-01-12', '2026-12-01 23:53:14.402685+00', 'coordinator.anna', NULL, '{"from": "screening", "to": "sorafenib_6m", "trigger": "start_treatment"}', NULL, NULL);
INSERT INTO event VALUES (3, 'P-001', 3, 'observation', '2026-01-12', '2026-12-01 23:53:14.435386+00', 'coordinator.anna', NULL, '{"date": "2026-01-12", "kind": "tg", "loq": 0.2, "unit": "ug/L", "value": 120.0}', NULL, 'aa9af0de7fda27fe770e114c364e518a0a80520a7743b4afa1fba393456de4c9');
INSERT INTO event VALUES (4, 'P-001', 4, 'observation', '2026-02-09', '2026-12-01 23:53:14.435386+00', 'coordinator.anna', NULL, '{"date": "2026-02-09", "kind": "tg", "loq": 0.2, "unit": "ug/L", "value": 95.0}', NULL, '078f5b7f043a74513e1dbbfdf45f7e480887a025a57d71399e4cfe29d251a86b');
INSERT INTO event VALUES (5, 'P-001', 5, 'observation', '2026-03-09', '2026-12-01 23:53:14.435386+00', 'coordinator.anna', NULL, '{"date": "2026-03-09", "kind": "tg", "loq": 0.2, "unit": "ug/L", "value": 70.0}', NULL, 'fa29ad237b11ddb85f54f5268efa353b0acca5288b8d7ab908118fcebff7ffdb');
INSERT INTO event VALUES (6, 'P-001', 6, 'observation', '2026-04-06', '2026-12-01 23:53:14.435386+00', 'coordinator.anna', NULL, '{"date": "2026-04-06", "kind": "tg", "loq": 0.2, "unit": "ug/L", "value": 61.0}', NULL, 'cebb498c113dc398800cc1210b5ad5981601e4f58dabf52b104dd898403302f4');
INSERT INTO event VALUES (7, 'P-001', 7, 'correction', '2026-02-09', '2026-12-01 23:53:14.450782+00', 'coordinator.anna', 'transcription error', '{"record": {"date": "2026-02-09", "kind": "tg", "loq": 0.2, "unit": "ug/L", "value": 96.0}, "root": 4}', 4, NULL);


--
-- Data for Name: patient; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO patient VALUES ('P-001', 1, 'sorafenib_6m', '2025-12-29', '2026-01-12', '2026-01-12', 800, '2026-01-05', '2026-04-06', 7, '2026-12-01 23:53:14.450782+00');


--
-- Data for Name: protocol_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO protocol_version VALUES (1, 'sorafenib-dtc', '1.0', 'f3b9012ee405ac17dd4afc8ffec1cb525def15d6ed39631ec8c5f365ce377f75', '# Sorafenib in radioiodine-refractory differentiated thyroid carcinoma: the study synopsis as data.
#
# Every element says where it comes from:
#   source: synopsis    the study synopsis states it
#   source: domain      a reading of the synopsis or an external standard, documented in DOMAIN.md
#   source: assumption  the synopsis is silent; a real protocol needs it; the investigators must confirm
# Schema: `trialflow protocol schema`.  Check an edit: `trialflow protocol validate FILE`.

study:
  id: sorafenib-dtc
  title: >-
    Sorafenib to restore radioiodine uptake and decrease tumour progression in radioiodine-refractory
    differentiated thyroid carcinoma
  version: "1.0"
  design: Prospective, open, single-arm study
  objective: >-
    To investigate whether therapy with the tyrosine kinase inhibitor Sorafenib increases the accumulation
    of radioiodine (RaI) and decreases tumour progression in patients with recurrences or metastases of
    non-medullary thyroid carcinoma with absent or insufficient accumulation of RaI.
  enrolment_target: 30
  source: synopsis

day0:
  event: first_sorafenib_dose
  description: Study day 0 is the day of the first Sorafenib dose; visit targets are offsets from it.
  source: domain

treatments:
  - id: sorafenib
    name: Sorafenib
    dose_mg_per_day: 800
    regimen: 400 mg twice daily, orally
    dose_levels_mg_per_day: [800, 600, 400, 200]
    source: synopsis
    note: Dose levels for toxicity follow the current label for thyroid cancer (a domain source, DOMAIN.md).
  - id: rai_6000
    name: High-dose radioiodine (131I)
    activity_mbq: 6000
    source: synopsis

eligibility:
  inclusion:
    - id: dtc_histology
      question: Histologically confirmed differentiated (non-medullary) thyroid carcinoma?
      source: synopsis
    - id: recurrence_or_metastases
      question: Recurrences or metastases of the thyroid carcinoma?
      source: synopsis
    - id: rai_refractory
      question: Absent or insufficient accumulation of RaI in the recurrences or metastases (unresponsive to RaI therapy)?
      source: synopsis
    - id: evaluable_disease
      question: At least one lesion measurable on CT (RECIST), so that the CT criterion can be assessed?
      source: assumption
    - id: adult
      question: Aged 18 years or older?
      source: assumption
    - id: informed_consent
      question: Written informed consent given?
      source: assumption
  exclusion:
    - id: medullary_or_anaplastic
      question: Medullary or anaplastic thyroid carcinoma?
      source: synopsis
    - id: prior_tki
      question: Previous treatment with a tyrosine kinase inhibitor?
      source: assumption
    - id: uncontrolled_hypertension
      question: Uncontrolled hypertension (Sorafenib raises blood pressure)?
      source: assumption
    - id: pregnancy_or_lactation
      question: Pregnant or breast-feeding?
      source: assumption

assessments:
  - id: tg
    name: Serum thyroglobulin with anti-thyroglobulin antibodies
    observation_kinds: [tg, tgab]
    source: synopsis
    note: TgAb is measured with every Tg sample because antibodies make immunometric Tg falsely low (domain).
  - id: rai_scan
    name: 131I scintigraphy, planar images and SPECT
    observation_kinds: [rai_scan]
    source: synopsis
  - id: ct
    name: CT scan for RECIST
    observation_kinds: [ct]
    source: synopsis
  - id: toxicity
    name: Adverse events (CTCAE grade) and Sorafenib dose
    observation_kinds: [adverse_event, dose_change]
    source: assumption

phases:
  - id: screening
    name: Screening and baseline
    kind: screening
    anchor: enrolment
    source: synopsis
    note: After inclusion, patients undergo 131I scintigraphy and a CT scan before Sorafenib starts.
    visits:
      - {id: baseline_rai_scan, name: Baseline 131I scintigraphy, day: 14, window: {before: 14, after: 14},
         assessments: [rai_scan], source: synopsis}
      - {id: baseline_ct, name: Baseline CT, day: 14, window: {before: 14, after: 14},
         assessments: [ct], source: synopsis}

  - id: sorafenib_6m
    name: Sorafenib 800 mg/day for 6 months
    kind: treatment
    anchor: day0
    duration_days: 196
    treatment: {id: sorafenib, dose_mg_per_day: 800}
    source: synopsis
    note: >-
      Six months of Sorafenib; Tg is sampled to week 28 as the synopsis lists, so the phase runs to day 196
      and Sorafenib continues until the decision (assumption).
    visits:
      - {id: tg_w0, name: Tg week 0, day: 0, window: {before: 7, after: 0}, assessments: [tg], source: synopsis}
      - {id: tg_w4, name: Tg week 4, day: 28, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: tg_w8, name: Tg week 8, day: 56, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: tg_w12, name: Tg week 12, day: 84, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: tg_w16, name: Tg week 16, day: 112, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: tg_w20, name: Tg week 20, day: 140, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: tg_w24, name: Tg week 24, day: 168, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}
      - {id: month6_rai_scan, name: 6-month 131I scintigraphy, day: 182, window: {before: 7, after: 14},
         assessments: [rai_scan], source: synopsis}
      - {id: month6_ct, name: 6-month CT, day: 182, window: {before: 7, after: 14},
         assessments: [ct], source: synopsis}
      - {id: tg_w28, name: Tg week 28, day: 196, window: {before: 3, after: 3}, assessments: [tg], source: synopsis}

  - id: decision_6m
    name: Decision after 6 months
    kind: decision
    anchor: phase_entry
    source: synopsis

  - id: rai_plus_sorafenib
    name: 6000 MBq 131I plus 6 more months of Sorafenib
    kind: treatment
    anchor: phase_entry
    duration_days: 182
    treatment: {id: sorafenib, dose_mg_per_day: 800}
    source: synopsis
    visits:
      - {id: rai_therapy, name: Administer 6000 MBq 131I, day: 14, window: {before: 7, after: 14},
         treatment: {id: rai_6000, activity_mbq: 6000}, source: synopsis}
      - {id: post_therapy_scan, name: Post-therapy 131I scan, day: 21, window: {before: 2, after: 5},
         assessments: [rai_scan], source: assumption}
      - {id: rai_tg_m3, name: Tg 3 months, day: 91, window: {before: 7, after: 7}, assessments: [tg],
         source: assumption}
      - {id: rai_ct_m6, name: CT 6 months, day: 182, window: {before: 7, after: 14}, assessments: [ct],
         source: assumption}
      - {id: rai_tg_m6, name: Tg 6 months, day: 182, window: {before: 7, after: 14}, assessments: [tg],
         source: assumption}

  - id: continued_sorafenib
    name: Continued Sorafenib
    kind: treatment
    anchor: phase_entry
    duration_days: 182
    treatment: {id: sorafenib, dose_mg_per_day: 800}
    source: synopsis
    note: The synopsis offers continued Sorafenib without a schedule; 3-monthly follow-up is assumed.
    visits:
      - {id: cont_tg_m3, name: Tg 3 months, day: 91, window: {before: 7, after: 7}, assessments: [tg],
         source: assumption}
      - {id: cont_ct_m3, name: CT 3 months, day: 91, window: {before: 7, after: 14}, assessments: [ct],
         source: assumption}
      - {id: cont_tg_m6, name: Tg 6 months, day: 182, window: {before: 7, after: 14}, assessments: [tg],
         source: assumption}
      - {id: cont_ct_m6, name: CT 6 months, day: 182, window: {before: 7, after: 14}, assessments: [ct],
         source: assumption}

  - id: off_study
    name: Off study (no favourable response)
    kind: terminal
    source: synopsis
  - id: end_of_study
    name: End of study
    kind: terminal
    source: synopsis
  - id: withdrawn
    name: Early termination
    kind: terminal
    source: assumption
  - id: screen_failure
    name: Screen failure
    kind: terminal
    source: assumption

transitions:
  - {trigger: start_treatment, source: screening, dest: sorafenib_6m,
     description: First Sorafenib dose (study day 0)}
  - {trigger: screen_fail, source: screening, dest: screen_failure,
     description: An eligibility criterion is not met}
  - {trigger: complete, source: sorafenib_6m, dest: decision_6m,
     description: The 6-month treatment and its assessments are complete}
  - {trigger: complete, source: rai_plus_sorafenib, dest: end_of_study,
     description: 6 months after 131I plus Sorafenib}
  - {trigger: complete, source: continued_sorafenib, dest: end_of_study,
     description: "6 months of continued Sorafenib, then treatment continues off study (assumption)"}

early_termination:
  dest: withdrawn
  from: [screening, sorafenib_6m, decision_6m, rai_plus_sorafenib, continued_sorafenib]
  reasons:
    - {id: consent, description: Consent withdrawn}
    - {id: toxicity, description: Unacceptable toxicity}
    - {id: death, description: Death}
    - {id: lost_to_follow_up, description: Lost to follow-up}
    - {id: progression, description: Progressive disease}
    - {id: investigator, description: Investigator decision}
  source: assumption

decision:
  id: month6
  name: Response to Sorafenib after 6 months
  phase: decision_6m
  source: synopsis
  criteria:
    - id: rai_uptake
      name: Reinduction of RaI uptake (131I scintigraphy, planar and/or SPECT)
      rule: rai_uptake
      visits: [baseline_rai_scan, month6_rai_scan]
      params: {min_new_avid_lesions: 1, modalities: [planar, spect]}
      favourable: [reinduced]
      source: synopsis
    - id: tg_slope
      name: No significant positive slope of log-transformed serum Tg, weeks 0 to 28
      rule: tg_slope
      visits: [tg_w0, tg_w4, tg_w8, tg_w12, tg_w16, tg_w20, tg_w24, tg_w28]
      params: {alpha: 0.05, test: two_sided, min_values: 4, loq_policy: half_loq, exclude_stimulated: true,
               tgab_positive: not_evaluable, first_week: 0, last_week: 28, tolerance_days: 7}
      favourable: [response, stable]
      source: synopsis
      note: Two-sided alpha and the minimum of 4 values are readings of the synopsis (domain).
    - id: recist
      name: Absence of progression on CT (RECIST 1.0, as the synopsis defines it)
      rule: recist
      visits: [baseline_ct, month6_ct]
      params: {version: "1.0", pr_threshold_pct: 30, pd_threshold_pct: 20, too_small_mm: 5,
               require_confirmation: true, confirmation_min_weeks: 4, sd_min_weeks: 6}
      favourable: [CR, PR, SD]
      source: synopsis
  favourable_response:
    min_criteria: 1
    description: A favourable response is ONE OR MORE of the three criteria.
    source: synopsis
  branches:
    - id: rai_reinduced
      to: rai_plus_sorafenib
      when: {criterion: rai_uptake, in: [reinduced]}
      description: RaI uptake restored, offered 6000 MBq 131I with 6 more months of Sorafenib
      source: synopsis
    - id: favourable_without_uptake
      to: continued_sorafenib
      when: {favourable: true}
      description: No RaI uptake but a favourable effect on tumour growth, offered continued Sorafenib
      source: synopsis
    - id: no_response
      to: off_study
      default: true
      description: No favourable response, off study
      source: domain
', '/work/wt/issue10/protocol/sorafenib_dtc.yaml', '2026-12-01 23:53:14.380331+00', 'investigator.dr-smit', 'initial protocol');


--
-- Data for Name: store_info; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO store_info VALUES ('study_id', 'sorafenib-dtc');
INSERT INTO store_info VALUES ('schema_version', '1');


--
-- Data for Name: work_item; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO work_item VALUES (28, 'P-001', 'visit', 'tg_w0', '2026-01-12', '2026-01-05', '2026-01-12', '2026-01-05', 'window', 'sorafenib_6m visit tg_w0 (tg), day 0 from study day 0, window -7/+0', 'Tg week 0 (tg)', NULL);
INSERT INTO work_item VALUES (29, 'P-001', 'visit', 'tg_w4', '2026-02-09', '2026-02-06', '2026-02-12', '2026-02-06', 'window', 'sorafenib_6m visit tg_w4 (tg), day 28 from study day 0, window -3/+3', 'Tg week 4 (tg)', NULL);
INSERT INTO work_item VALUES (30, 'P-001', 'visit', 'tg_w8', '2026-03-09', '2026-03-06', '2026-03-12', '2026-03-06', 'window', 'sorafenib_6m visit tg_w8 (tg), day 56 from study day 0, window -3/+3', 'Tg week 8 (tg)', NULL);
INSERT INTO work_item VALUES (31, 'P-001', 'visit', 'tg_w12', '2026-04-06', '2026-04-03', '2026-04-09', '2026-04-03', 'window', 'sorafenib_6m visit tg_w12 (tg), day 84 from study day 0, window -3/+3', 'Tg week 12 (tg)', NULL);
INSERT INTO work_item VALUES (32, 'P-001', 'visit', 'tg_w16', '2026-05-04', '2026-05-01', '2026-05-07', '2026-05-01', 'window', 'sorafenib_6m visit tg_w16 (tg), day 112 from study day 0, window -3/+3', 'Tg week 16 (tg)', NULL);
INSERT INTO work_item VALUES (33, 'P-001', 'visit', 'tg_w20', '2026-06-01', '2026-05-29', '2026-06-04', '2026-05-29', 'window', 'sorafenib_6m visit tg_w20 (tg), day 140 from study day 0, window -3/+3', 'Tg week 20 (tg)', NULL);
INSERT INTO work_item VALUES (34, 'P-001', 'visit', 'tg_w24', '2026-06-29', '2026-06-26', '2026-07-02', '2026-06-26', 'window', 'sorafenib_6m visit tg_w24 (tg), day 168 from study day 0, window -3/+3', 'Tg week 24 (tg)', NULL);
INSERT INTO work_item VALUES (35, 'P-001', 'visit', 'month6_ct', '2026-07-13', '2026-07-06', '2026-07-27', '2026-07-06', 'window', 'sorafenib_6m visit month6_ct (ct), day 182 from study day 0, window -7/+14', '6-month CT (ct)', NULL);
INSERT INTO work_item VALUES (36, 'P-001', 'visit', 'month6_rai_scan', '2026-07-13', '2026-07-06', '2026-07-27', '2026-07-06', 'window', 'sorafenib_6m visit month6_rai_scan (rai_scan), day 182 from study day 0, window -7/+14', '6-month 131I scintigraphy (rai_scan)', NULL);
INSERT INTO work_item VALUES (37, 'P-001', 'visit', 'tg_w28', '2026-07-27', '2026-07-24', '2026-07-30', '2026-07-24', 'window', 'sorafenib_6m visit tg_w28 (tg), day 196 from study day 0, window -3/+3', 'Tg week 28 (tg)', NULL);
INSERT INTO work_item VALUES (38, 'P-001', 'dispense', NULL, '2026-01-12', '2026-01-05', NULL, '2026-01-05', 'open_ended', 'sorafenib_6m: continuous Sorafenib; no supply dispensed yet', 'dispense Sorafenib 800 mg/day', NULL);
INSERT INTO work_item VALUES (39, 'P-001', 'decide', NULL, '2026-07-31', '2026-07-31', '2026-08-14', '2026-07-24', 'decision', 'decision month6: every criterion''s assessments are in or their windows have closed; waits for baseline_rai_scan (window closes 2026-01-26), month6_rai_scan (window closes 2026-07-27), tg_w0 (window closes 2026-01-12), tg_w4 (window closes 2026-02-12), tg_w8 (window closes 2026-03-12), tg_w12 (window closes 2026-04-09), tg_w16 (window closes 2026-05-07), tg_w20 (window closes 2026-06-04), tg_w24 (window closes 2026-07-02), tg_w28 (window closes 2026-07-30), baseline_ct (window closes 2026-01-26), month6_ct (window closes 2026-07-27)', 'Response to Sorafenib after 6 months: ready (trialflow evaluate P-001)', 'Response to Sorafenib after 6 months: waiting');


--
-- Name: event_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('event_id_seq', 7, true);


--
-- Name: protocol_version_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('protocol_version_id_seq', 1, true);


--
-- Name: work_item_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('work_item_id_seq', 39, true);


--
-- Name: event event_dedup_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY event
    ADD CONSTRAINT event_dedup_key_key UNIQUE (dedup_key);


--
-- Name: event event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY event
    ADD CONSTRAINT event_pkey PRIMARY KEY (id);


--
-- Name: patient patient_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_pkey PRIMARY KEY (id);


--
-- Name: protocol_version protocol_version_content_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY protocol_version
    ADD CONSTRAINT protocol_version_content_hash_key UNIQUE (content_hash);


--
-- Name: protocol_version protocol_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY protocol_version
    ADD CONSTRAINT protocol_version_pkey PRIMARY KEY (id);


--
-- Name: store_info store_info_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY store_info
    ADD CONSTRAINT store_info_pkey PRIMARY KEY (key);


--
-- Name: event uq_event_patient_seq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY event
    ADD CONSTRAINT uq_event_patient_seq UNIQUE (patient_id, seq);


--
-- Name: work_item work_item_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY work_item
    ADD CONSTRAINT work_item_pkey PRIMARY KEY (id);


--
-- Name: ix_event_kind; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_event_kind ON event USING btree (kind);


--
-- Name: ix_event_patient_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_event_patient_id ON event USING btree (patient_id);


--
-- Name: ix_event_patient_recorded; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_event_patient_recorded ON event USING btree (patient_id, recorded_at);


--
-- Name: ix_patient_next_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_patient_next_due ON patient USING btree (next_due);


--
-- Name: ix_patient_phase; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_patient_phase ON patient USING btree (phase);


--
-- Name: ix_patient_protocol_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_patient_protocol_version_id ON patient USING btree (protocol_version_id);


--
-- Name: ix_protocol_version_study_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_protocol_version_study_id ON protocol_version USING btree (study_id);


--
-- Name: ix_work_item_opens; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_work_item_opens ON work_item USING btree (opens);


--
-- Name: ix_work_item_patient_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_work_item_patient_id ON work_item USING btree (patient_id);


--
-- Name: event event_corrects_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY event
    ADD CONSTRAINT event_corrects_id_fkey FOREIGN KEY (corrects_id) REFERENCES event(id);


--
-- Name: patient patient_protocol_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_protocol_version_id_fkey FOREIGN KEY (protocol_version_id) REFERENCES protocol_version(id);


--
-- Name: work_item work_item_patient_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY work_item
    ADD CONSTRAINT work_item_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id);


--
-- PostgreSQL database dump complete
--


