"""The organic reactions (atom-mapped SMILES pairs) and stable molecules the reactive data sets sample."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reaction:
    """One reaction: atom-mapped reactant and product SMILES (heavy atoms and moving H mapped)."""

    name: str
    reactant: str
    product: str
    description: str


REACTIONS: tuple[Reaction, ...] = (
    Reaction("diels-alder", "[CH2:1]=[CH:2][CH:3]=[CH2:4].[CH2:5]=[CH2:6]",
             "[CH2:1]1[CH:2]=[CH:3][CH2:4][CH2:5][CH2:6]1", "butadiene + ethylene -> cyclohexene"),
    Reaction("claisen", "[CH2:1]=[CH:2][O:3][CH2:4][CH:5]=[CH2:6]",
             "[CH2:1]([CH:2]=[O:3])[CH2:6][CH:5]=[CH2:4]", "allyl vinyl ether -> pent-4-enal ([3,3] shift)"),
    Reaction("hcn-hnc", "[H:3][C:1]#[N:2]", "[C-:1]#[N+:2][H:3]", "HCN -> HNC isomerisation"),
    Reaction("keto-enol", "[CH2:1]([H:4])[CH:2]=[O:3]", "[CH2:1]=[CH:2][O:3][H:4]",
             "acetaldehyde -> vinyl alcohol (1,3-H shift)"),
    Reaction("formamide", "[CH:1](=[O:2])[NH:3][H:4]", "[CH:1](=[NH:3])[O:2][H:4]",
             "formamide -> formimidic acid tautomerism"),
    Reaction("h-shift-15", "[CH2:1]=[CH:2]/[CH:3]=[CH:4]\\[CH2:5][H:6]", "[H:6][CH2:1]/[CH:2]=[CH:3]\\[CH:4]=[CH2:5]",
             "(Z)-penta-1,3-diene [1,5]-sigmatropic H shift"),
    Reaction("cyclobutene", "[CH2:1]1[CH:2]=[CH:3][CH2:4]1", "[CH2:1]=[CH:2][CH:3]=[CH2:4]",
             "cyclobutene -> s-cis-butadiene electrocyclic ring opening"),
    Reaction("h2co-dissociation", "[H:3][C:1](=[O:2])[H:4]", "[C-:1]#[O+:2].[H:3][H:4]",
             "formaldehyde -> H2 + CO"),
    Reaction("formic-acid-dehydration", "[H:4][C:1](=[O:2])[O:3][H:5]", "[C-:1]#[O+:2].[H:4][O:3][H:5]",
             "formic acid -> CO + H2O"),
    Reaction("methyl-isocyanide", "[CH3:1][N+:2]#[C-:3]", "[CH3:1][C:3]#[N:2]",
             "methyl isocyanide -> acetonitrile"),
    Reaction("cope", "[CH2:1]=[CH:2][CH2:3][CH2:4][CH:5]=[CH2:6]", "[CH2:3]=[CH:2][CH2:1][CH2:6][CH:5]=[CH2:4]",
             "hexa-1,5-diene Cope rearrangement ([3,3] shift)"),
    Reaction("hexatriene", "[CH2:1]1[CH:2]=[CH:3][CH:4]=[CH:5][CH2:6]1", "[CH2:1]=[CH:2]/[CH:3]=[CH:4]\\[CH:5]=[CH2:6]",
             "cyclohexa-1,3-diene -> (Z)-hexa-1,3,5-triene 6π electrocyclic ring opening"),
    Reaction("nitrile-oxide", "[CH:1]#[N+:2][O-:3].[CH2:4]=[CH2:5]", "[CH:1]1=[N:2][O:3][CH2:5][CH2:4]1",
             "fulminic acid + ethylene -> 2-isoxazoline (1,3-dipolar cycloaddition)"),
    Reaction("ester-pyrolysis", "[CH:1](=[O:2])[O:3][CH2:4][CH2:5][H:6]", "[H:6][O:2][CH:1]=[O:3].[CH2:4]=[CH2:5]",
             "ethyl formate -> formic acid + ethylene (Ei syn-elimination, six-membered TS)"),
    Reaction("malonaldehyde", "[O:1]=[CH:2]/[CH:3]=[CH:4]\\[O:5][H:6]", "[H:6][O:1]/[CH:2]=[CH:3]\\[CH:4]=[O:5]",
             "malonaldehyde intramolecular proton transfer"),
    Reaction("formic-acid-dimer", "[H:1][C:2](=[O:3])[O:4][H:5].[H:6][C:7](=[O:8])[O:9][H:10]",
             "[H:1][C:2]([O:3][H:10])=[O:4].[H:6][C:7]([O:8][H:5])=[O:9]",
             "formic acid dimer concerted double proton transfer"),
    Reaction("ethanol-dehydration", "[H:5][CH2:1][CH2:2][O:3][H:4]", "[CH2:1]=[CH2:2].[H:5][O:3][H:4]",
             "ethanol -> ethylene + water (four-centre 1,2-elimination)"),
    Reaction("ene", "[CH2:1]=[CH:2][CH2:3][H:4].[CH2:5]=[CH2:6]", "[CH2:3]=[CH:2][CH2:1][CH2:6][CH2:5][H:4]",
             "propene + ethylene -> pent-1-ene (ene reaction)"),
    Reaction("formic-acid-dehydrogenation", "[H:4][C:1](=[O:2])[O:3][H:5]", "[O:2]=[C:1]=[O:3].[H:4][H:5]",
             "formic acid -> CO2 + H2 (hydride and proton leave together)"),
    Reaction("oxirane", "[CH2:1]1[O:2][CH:3]1[H:4]", "[H:4][CH2:1][CH:3]=[O:2]",
             "oxirane -> acetaldehyde (ring opening with a 1,2-H shift)"),
    Reaction("isocyanic-acid", "[H:1][N:2]=[C:3]=[O:4]", "[N:2]#[C:3][O:4][H:1]",
             "isocyanic acid -> cyanic acid (1,3-H shift)"),
    Reaction("nitrosomethane", "[H:4][CH2:1][N:2]=[O:3]", "[CH2:1]=[N:2][O:3][H:4]",
             "nitrosomethane -> formaldoxime (1,3-H shift tautomerism)"),
    Reaction("retro-ene", "[CH2:1]=[CH:2][CH2:3][CH2:4][O:5][H:6]", "[H:6][CH2:1][CH:2]=[CH2:3].[CH2:4]=[O:5]",
             "but-3-en-1-ol -> propene + formaldehyde (retro-ene fragmentation)"),
    Reaction("diazomethane", "[CH2:1]=[N+:2]=[N-:3].[CH2:4]=[CH2:5]", "[CH2:1]1[N:2]=[N:3][CH2:5][CH2:4]1",
             "diazomethane + ethylene -> 1-pyrazoline (1,3-dipolar cycloaddition)"),
    # a second set, added for more kinds of chemistry in the Δ training data (all GFN2-xTB saddles verified)
    Reaction("cyanamide", "[H:4][NH:1][C:2]#[N:3]",
             "[NH:1]=[C:2]=[N:3][H:4]",
             "cyanamide -> carbodiimide (1,3-H shift)"),
    Reaction("methanol-dehydrogenation", "[H:4][CH2:1][O:2][H:3]",
             "[CH2:1]=[O:2].[H:4][H:3]",
             "methanol -> formaldehyde + H2 (1,2-elimination)"),
    Reaction("formamidine", "[NH:1]=[CH:2][NH:3][H:4]",
             "[H:4][NH:1][CH:2]=[NH:3]",
             "formamidine degenerate 1,3-H shift"),
    Reaction("nitromethane-aci", "[H:4][CH2:1][N+:2](=[O:3])[O-:5]",
             "[CH2:1]=[N+:2]([O:3][H:4])[O-:5]",
             "nitromethane -> aci-nitromethane (1,3-H shift)"),
    Reaction("formaldehyde-ammonia", "[CH2:1]=[O:2].[NH2:3][H:4]",
             "[CH2:1]([O:2][H:4])[NH2:3]",
             "formaldehyde + ammonia -> aminomethanol (four-centre addition)"),
    Reaction("acetic-acid-dehydration", "[H:5][CH2:1][C:2](=[O:3])[O:4][H:6]",
             "[CH2:1]=[C:2]=[O:3].[H:5][O:4][H:6]",
             "acetic acid -> ketene + water (four-centre 1,2-elimination)"),
    Reaction("hn3-cycloaddition", "[NH:1]=[N+:2]=[N-:3].[CH2:4]=[CH2:5]",
             "[NH:1]1[N:2]=[N:3][CH2:5][CH2:4]1",
             "hydrazoic acid + ethylene -> triazoline (1,3-dipolar cycloaddition)"),
    Reaction("acetone-enol", "[CH3:1][C:2](=[O:3])[CH2:4][H:5]",
             "[CH3:1][C:2]([O:3][H:5])=[CH2:4]",
             "acetone -> propen-2-ol (1,3-H shift)"),
    Reaction("pyran-ring-opening", "[O:1]1[CH2:2][CH:3]=[CH:4][CH:5]=[CH:6]1",
             "[CH2:2]=[CH:3]/[CH:4]=[CH:5]\\[CH:6]=[O:1]",
             "2H-pyran -> (Z)-penta-2,4-dienal (oxa-6π electrocyclic ring opening)"),
    Reaction("cyclopentadiene-h-shift", "[CH:1]1([H:6])[CH:2]=[CH:3][CH:4]=[CH:5]1",
             "[CH:1]1=[CH:2][CH:3]=[CH:4][CH:5]1[H:6]",
             "cyclopentadiene [1,5]-sigmatropic H shift"),
    Reaction("nitrone-cycloaddition", "[CH2:1]=[NH+:2][O-:3].[CH2:4]=[CH2:5]",
             "[CH2:1]1[NH:2][O:3][CH2:5][CH2:4]1",
             "nitrone + ethylene -> isoxazolidine (1,3-dipolar cycloaddition)"),
    Reaction("butenoic-acid-decarboxylation", "[CH2:1]=[CH:2][CH2:3][C:4](=[O:5])[O:6][H:7]",
             "[H:7][CH2:1][CH:2]=[CH2:3].[O:5]=[C:4]=[O:6]",
             "but-3-enoic acid -> propene + CO2 (retro-ene decarboxylation)"),
    Reaction("pyridone", "[H:7][O:1][C:2]1=[N:3][CH:4]=[CH:5][CH:6]=[CH:8]1",
             "[O:1]=[C:2]1[N:3]([H:7])[CH:4]=[CH:5][CH:6]=[CH:8]1",
             "2-hydroxypyridine -> 2-pyridone (1,3-H shift)"),
    Reaction("acetylene-diels-alder", "[CH2:1]=[CH:2][CH:3]=[CH2:4].[CH:5]#[CH:6]",
             "[CH2:1]1[CH:2]=[CH:3][CH2:4][CH:5]=[CH:6]1",
             "butadiene + acetylene -> cyclohexa-1,4-diene (Diels-Alder)"),
    Reaction("furan-diels-alder", "[cH:1]1[cH:2][cH:3][cH:4][o:5]1.[CH2:6]=[CH2:7]",
             "[CH:1]12[CH:2]=[CH:3][CH:4]([O:5]1)[CH2:6][CH2:7]2",
             "furan + ethylene -> 7-oxanorbornene (Diels-Alder)"),
    Reaction("formaldehyde-water", "[CH2:1]=[O:2].[OH:3][H:4]",
             "[CH2:1]([O:2][H:4])[OH:3]",
             "formaldehyde + water -> methanediol (four-centre addition)"),
    Reaction("propyne-allene", "[H:4][CH2:1][C:2]#[CH:3]",
             "[CH2:1]=[C:2]=[CH:3][H:4]",
             "propyne -> allene (1,3-H shift)"),
    Reaction("cope-elimination", "[H:6][CH2:1][CH2:2][NH2+:3][O-:4]",
             "[CH2:1]=[CH2:2].[NH2:3][O:4][H:6]",
             "ethylamine N-oxide -> ethylene + hydroxylamine (Cope elimination, five-membered TS)"),
    Reaction("n2o-cycloaddition", "[N-:1]=[N+:2]=[O:3].[CH2:4]=[CH2:5]",
             "[N:1]1=[N:2][O:3][CH2:5][CH2:4]1",
             "nitrous oxide + ethylene -> 4,5-dihydro-1,2,3-oxadiazole (1,3-dipolar cycloaddition)"),
    Reaction("formaldehyde-hcn", "[CH2:1]=[O:2].[H:3][C:4]#[N:5]",
             "[N:5]#[C:4][CH2:1][O:2][H:3]",
             "formaldehyde + HCN -> glycolonitrile (four-centre addition)"),
    Reaction("cyclohexadiene-h2-elimination", "[CH:1]1([H:7])[CH:2]=[CH:3][CH:4]([H:8])[CH:5]=[CH:6]1",
             "[cH:1]1[cH:2][cH:3][cH:4][cH:5][cH:6]1.[H:7][H:8]",
             "cyclohexa-1,4-diene -> benzene + H2 (concerted 1,4-elimination)"),
)

# Reactions sampled for rxn-dft only (added after rxn-xtb was built): kinds the first 45 lacked among the training
# reactions, a three-membered ring opening with a 1,2-H shift and a proton transfer across an intramolecular H-bond
DFT_ONLY_REACTIONS: tuple[Reaction, ...] = (
    Reaction("methyloxirane", "[CH3:5][C:3]1([H:4])[O:2][CH2:1]1", "[H:4][CH2:1][C:3](=[O:2])[CH3:5]",
             "methyloxirane -> acetone (ring opening with a 1,2-H shift)"),
    Reaction("dimethyloxirane", "[CH3:5][C:3]1([H:4])[O:2][CH:1]1[CH3:6]", "[H:4][CH:1]([CH3:6])[C:3](=[O:2])[CH3:5]",
             "2,3-dimethyloxirane -> butan-2-one (ring opening with a 1,2-H shift)"),
    Reaction("acac-enol", "[O:1]=[C:2]([CH3:7])/[CH:3]=[C:4]([CH3:8])\\[O:5][H:6]",
             "[H:6][O:1]/[C:2]([CH3:7])=[CH:3]\\[C:4]([CH3:8])=[O:5]",
             "acetylacetone enol intramolecular proton transfer"),
)

# A third set, for transfer: the held-out force error falls with the number of training reactions, hardly with more
# frames of the same ones, so these get the first selection only (no extra rounds). Small molecules of kinds the
# first 48 lack or have once (eliminations and fragmentations, additions to cumulenes, 1,2- and 1,3-shifts on N and O,
# a methyl migration), none a kin of a held-out reaction. Each GFN2-xTB saddle verified; tried and left out (no
# verified saddle): methylamine, methanimine and ethane dehydrogenation (SCF not converged), glyoxal fragmentation and
# nitroethane elimination (no imaginary mode), methyl nitrite, acetic acid decarboxylation, cis-trans diazene and
# cyclopropane -> propene (IRC does not connect), methyl cyanate (no 3D embedding).
MORE_REACTIONS: tuple[Reaction, ...] = (
    Reaction("carbonic-acid", "[O:1]=[C:2]([O:3][H:5])[O:4][H:6]", "[O:1]=[C:2]=[O:3].[H:5][O:4][H:6]",
             "carbonic acid -> CO2 + water (four-centre 1,2-elimination)"),
    Reaction("carbamic-acid", "[O:1]=[C:2]([O:3][H:5])[NH2:4]", "[O:1]=[C:2]=[O:3].[H:5][NH2:4]",
             "carbamic acid -> CO2 + ammonia (four-centre 1,2-elimination)"),
    Reaction("acetaldehyde-decarbonylation", "[H:4][C:2]([CH3:1])=[O:3]", "[CH3:1][H:4].[C-:2]#[O+:3]",
             "acetaldehyde -> methane + CO (1,2-H shift with C-C cleavage)"),
    Reaction("formamide-decarbonylation", "[H:4][C:2](=[O:3])[NH2:1]", "[H:4][NH2:1].[C-:2]#[O+:3]",
             "formamide -> ammonia + CO (1,2-H shift with C-N cleavage)"),
    Reaction("ethynol-ketene", "[CH:1]#[C:2][O:3][H:4]", "[H:4][CH:1]=[C:2]=[O:3]",
             "ethynol -> ketene (1,3-H shift)"),
    Reaction("hydroxylamine-oxide", "[NH2:1][O:2][H:3]", "[H:3][NH2+:1][O-:2]",
             "hydroxylamine -> ammonia oxide (1,2-H shift)"),
    Reaction("nitrous-acid", "[O:1]=[N:2][O:3][H:4]", "[O:1]=[N+:2]([O-:3])[H:4]",
             "nitrous acid HONO -> HNO2 (1,2-H shift)"),
    Reaction("ethylamine-deamination", "[H:5][CH2:1][CH2:2][NH2:3]", "[CH2:1]=[CH2:2].[H:5][NH2:3]",
             "ethylamine -> ethylene + ammonia (four-centre 1,2-elimination)"),
    Reaction("urea-formation", "[H:2][NH2:1].[H:6][N:3]=[C:4]=[O:5]", "[NH2:1][C:4](=[O:5])[N:3]([H:2])[H:6]",
             "ammonia + isocyanic acid -> urea (four-centre addition across C=N)"),
    Reaction("ketene-hydration", "[CH2:1]=[C:2]=[O:3].[H:4][OH:5]", "[CH2:1]=[C:2]([OH:5])[O:3][H:4]",
             "ketene + water -> ethene-1,1-diol (four-centre addition across C=O)"),
    Reaction("methyl-formate-decarbonylation", "[H:5][C:1](=[O:2])[O:3][CH3:4]", "[C-:1]#[O+:2].[H:5][O:3][CH3:4]",
             "methyl formate -> methanol + CO (1,2-H shift with C-O cleavage)"),
    Reaction("dimethyl-ether", "[H:5][CH2:1][O:2][CH3:3]", "[CH2:1]=[O:2].[H:5][CH3:3]",
             "dimethyl ether -> formaldehyde + methane (four-centre elimination)"),
    Reaction("ethanol-dehydrogenation", "[CH3:1][CH:2]([H:5])[O:3][H:4]", "[CH3:1][CH:2]=[O:3].[H:5][H:4]",
             "ethanol -> acetaldehyde + H2 (1,2-elimination)"),
    Reaction("acetonitrile-ketenimine", "[H:4][CH2:1][C:2]#[N:3]", "[CH2:1]=[C:2]=[N:3][H:4]",
             "acetonitrile -> ketenimine (1,3-H shift)"),
    Reaction("vinylamine-imine", "[CH2:1]=[CH:2][NH:3][H:4]", "[H:4][CH2:1][CH:2]=[NH:3]",
             "vinylamine -> ethanimine (enamine-imine 1,3-H shift)"),
    Reaction("nitrosamine", "[H:4][NH:1][N:2]=[O:3]", "[NH:1]=[N:2][O:3][H:4]",
             "nitrosamine -> HN=NOH (1,3-H shift)"),
    Reaction("formaldoxime-nitrone", "[CH2:1]=[N:2][O:3][H:4]", "[CH2:1]=[N+:2]([H:4])[O-:3]",
             "formaldoxime -> formaldonitrone (1,2-H shift)"),
    Reaction("nitro-nitrite", "[CH3:1][N+:2](=[O:3])[O-:4]", "[CH3:1][O:4][N:2]=[O:3]",
             "nitromethane -> methyl nitrite (methyl migration)"),
)
# A fourth set, for transfer likewise (first selection only): more kinds the training set lacks (a [2,3]-sigmatropic
# shift, a cheletropic extrusion, a retro-[2+2], a triple fragmentation, additions across C≡N and C≡C, condensation),
# none a kin of a held-out reaction, each GFN2-xTB saddle verified. Tried and left out: E/Z inversion at N of
# ethanimine and acetaldoxime (one bond graph on both sides, so the IRC check cannot tell them apart), methyl azide
# -> methanimine + N2, ketene + ethylene or formaldehyde [2+2], water-relayed formamide tautomerism, oxalic acid ->
# CO2 + formic acid, methyl nitrite -> formaldehyde + HNO (IRC does not connect), hydrazine dehydrogenation (SCF not
# converged), cis-diazene + ethylene (a saddle of 103i cm-1 below the reactants: not the H transfer).
FOURTH_SET: tuple[Reaction, ...] = (
    Reaction("meisenheimer", "[CH2:1]=[CH:2][CH2:3][NH2+:4][O-:5]", "[CH2:3]=[CH:2][CH2:1][O:5][NH2:4]",
             "allylamine N-oxide -> O-allylhydroxylamine ([2,3]-sigmatropic Meisenheimer rearrangement)"),
    Reaction("glyoxylic-acid", "[O:1]=[CH:2][C:3](=[O:4])[O:5][H:6]", "[O:1]=[CH:2][H:6].[O:4]=[C:3]=[O:5]",
             "glyoxylic acid -> formaldehyde + CO2 (H transfer with C-C cleavage)"),
    Reaction("formic-anhydride", "[O:3]=[CH:2][O:4][C:5](=[O:6])[H:7]", "[O:4]=[CH:2][O:3][H:7].[C-:5]#[O+:6]",
             "formic anhydride -> formic acid + CO (six-centre H transfer)"),
    Reaction("acetylene-hydration", "[CH:1]#[CH:2].[H:3][O:4][H:5]", "[H:3][CH:1]=[CH:2][O:4][H:5]",
             "acetylene + water -> vinyl alcohol (four-centre addition across C#C)"),
    Reaction("methanimine-hcn", "[CH2:1]=[NH:2].[H:3][C:4]#[N:5]", "[N:5]#[C:4][CH2:1][NH:2][H:3]",
             "methanimine + HCN -> aminoacetonitrile (four-centre addition across C=N)"),
    Reaction("cyclopentenone-co", "[CH2:1]1[CH:2]=[CH:3][CH2:4][C:5]1=[O:6]",
             "[CH2:1]=[CH:2][CH:3]=[CH2:4].[C-:5]#[O+:6]", "cyclopent-3-enone -> butadiene + CO (cheletropic)"),
    Reaction("trioxane", "[CH2:1]1[O:2][CH2:3][O:4][CH2:5][O:6]1", "[CH2:1]=[O:2].[CH2:3]=[O:4].[CH2:5]=[O:6]",
             "1,3,5-trioxane -> three formaldehyde (concerted triple fragmentation)"),
    Reaction("formic-acid-ammonia", "[H:1][C:2](=[O:3])[O:4][H:5].[H:6][NH2:7]",
             "[H:1][C:2](=[O:3])[NH2:7].[H:5][O:4][H:6]", "formic acid + ammonia -> formamide + water"),
    Reaction("glycol-elimination", "[H:6][O:1][CH2:2][CH:3]([H:7])[O:4][H:5]",
             "[H:6][O:1][H:7].[CH2:2]=[CH:3][O:4][H:5]", "ethylene glycol -> vinyl alcohol + water (1,2-elimination)"),
    Reaction("formyl-cyanide", "[H:1][C:2](=[O:3])[C:4]#[N:5]", "[H:1][C:4]#[N:5].[C-:2]#[O+:3]",
             "formyl cyanide -> HCN + CO (1,2-H shift with C-C cleavage)"),
    Reaction("hcn-ammonia", "[H:1][C:2]#[N:3].[H:4][NH2:5]", "[H:1][C:2](=[N:3][H:4])[NH2:5]",
             "HCN + ammonia -> formamidine (four-centre addition across C#N)"),
    Reaction("hcn-water", "[H:1][C:2]#[N:3].[H:4][O:5][H:6]", "[H:1][C:2](=[N:3][H:4])[O:5][H:6]",
             "HCN + water -> formimidic acid (four-centre addition across C#N)"),
    Reaction("ketene-ammonia", "[CH2:1]=[C:2]=[O:3].[H:4][NH2:5]", "[CH2:1]=[C:2]([NH2:5])[O:3][H:4]",
             "ketene + ammonia -> 1-aminoethenol (four-centre addition across C=O)"),
    Reaction("acetone-ketene", "[CH3:1][C:2](=[O:3])[CH2:4][H:5]", "[CH3:1][H:5].[CH2:4]=[C:2]=[O:3]",
             "acetone -> ketene + methane (four-centre elimination)"),
    Reaction("propiolactone", "[CH2:1]1[C:2](=[O:3])[O:4][CH2:5]1", "[CH2:1]=[CH2:5].[O:3]=[C:2]=[O:4]",
             "beta-propiolactone -> ethylene + CO2 (retro-[2+2])"),
)

# Kin of the held-out reactions, of their size (10-16 atoms; first selection only): the small reactions of the third
# set did not carry to Claisen or oxirane, so these test the other reading of the curve in reactions, that transfer
# wants reactions of the held-out kinds. One or two for each held-out reaction, none of them a held-out reaction;
# each GFN2-xTB saddle verified. Tried and left out: aza-Claisen (IRC does not connect), allyl formate's degenerate
# [3,3] shift (no imaginary mode).
KIN_SET: tuple[Reaction, ...] = (
    Reaction("propargyl-claisen", "[CH2:1]=[CH:2][O:3][CH2:4][C:5]#[CH:6]", "[CH2:1]([CH:2]=[O:3])[CH:6]=[C:5]=[CH2:4]",
             "propargyl vinyl ether -> penta-3,4-dienal ([3,3] shift, kin of claisen)"),
    Reaction("aza-retro-ene", "[CH2:1]=[CH:2][CH2:3][CH2:4][NH:5][H:6]", "[H:6][CH2:1][CH:2]=[CH2:3].[CH2:4]=[NH:5]",
             "but-3-enylamine -> propene + methanimine (retro-ene, kin of retro-ene)"),
    Reaction("pentenol-retro-ene", "[CH2:1]=[CH:2][CH2:3][CH:4]([CH3:7])[O:5][H:6]",
             "[H:6][CH2:1][CH:2]=[CH2:3].[CH:4]([CH3:7])=[O:5]",
             "pent-4-en-2-ol -> propene + acetaldehyde (retro-ene, kin of retro-ene)"),
    Reaction("norcaradiene", "[CH2:1]1[CH:2]=[CH:3][CH:4]=[CH:5][CH:6]=[CH:7]1",
             "[CH2:1]1[CH:2]2[CH:3]=[CH:4][CH:5]=[CH:6][CH:7]12",
             "cycloheptatriene -> norcaradiene (6π electrocyclisation, kin of hexatriene)"),
    Reaction("aminoacrolein", "[O:1]=[CH:2]/[CH:3]=[CH:4]\\[NH:5][H:6]", "[H:6][O:1]/[CH:2]=[CH:3]\\[CH:4]=[NH:5]",
             "(Z)-3-aminoacrolein N-H...O proton transfer (kin of malonaldehyde)"),
    Reaction("methyloxirane-propanal", "[CH3:5][CH:1]1[O:2][CH:3]1[H:4]", "[CH3:5][CH:1]([H:4])[CH:3]=[O:2]",
             "methyloxirane -> propanal (ring opening with a 1,2-H shift, kin of oxirane)"),
)
ALL_REACTIONS: tuple[Reaction, ...] = REACTIONS + DFT_ONLY_REACTIONS + MORE_REACTIONS + FOURTH_SET + KIN_SET

# name -> SMILES: small stable C/H/N/O molecules for near-equilibrium MD (300-1000 K)
MOLECULES: dict[str, str] = {
    "water": "O", "ammonia": "N", "methane": "C", "methanol": "CO", "ethanol": "CCO",
    "formaldehyde": "C=O", "acetaldehyde": "CC=O", "acetone": "CC(C)=O", "formic acid": "OC=O",
    "acetic acid": "CC(=O)O", "methylamine": "CN", "ethane": "CC", "ethylene": "C=C",
    "acetylene": "C#C", "propene": "CC=C", "benzene": "c1ccccc1", "hydrogen cyanide": "C#N",
    "acetonitrile": "CC#N", "urea": "NC(N)=O", "glycine": "NCC(=O)O", "pyridine": "c1ccncc1",
    "furan": "c1ccoc1", "dimethyl ether": "COC", "nitromethane": "C[N+](=O)[O-]",
    "hydroxylamine": "NO", "formamide": "NC=O", "carbon dioxide": "O=C=O", "methyl formate": "COC=O",
    "oxirane": "C1CO1", "cyclopropane": "C1CC1", "imidazole": "c1cnc[nH]1", "hydrazine": "NN",
}


def get_reaction(name: str) -> Reaction:
    """The reaction called ``name``; KeyError lists the known names."""
    for r in ALL_REACTIONS:
        if r.name == name:
            return r
    raise KeyError(f"unknown reaction {name!r}; known: {', '.join(r.name for r in ALL_REACTIONS)}")
