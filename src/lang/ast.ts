/**
 * The syntax tree of Arbiter's policy language, as produced by the Peggy
 * grammar (grammar.peggy). Every node carries its location. The compiler
 * turns these into the decision tree; the evaluator never sees them.
 */
import type { SourceLocation } from '../errors.js';

/** The attribute roots a path may start from. */
export const ATTRIBUTE_ROOTS = ['subject', 'resource', 'action', 'context'] as const;
export type AttributeRoot = (typeof ATTRIBUTE_ROOTS)[number];

export interface Ident {
  readonly name: string;
  readonly loc: SourceLocation;
}

export interface PolicyFile {
  readonly kind: 'file';
  readonly source: string;
  readonly decls: readonly Decl[];
}

export type Decl = RolesDecl | DeriveDecl | ResourceDecl | RoutesDecl;

/** `roles { admin > editor > viewer, auditor > viewer, guest }` */
export interface RolesDecl {
  readonly kind: 'roles';
  /** Each chain lists roles from the most to the least powerful. */
  readonly chains: readonly (readonly Ident[])[];
  readonly loc: SourceLocation;
}

/** `derive owner for document, folder when resource.owner == subject.sub` */
export interface DeriveDecl {
  readonly kind: 'derive';
  readonly name: Ident;
  /** Resource types the role is defined for; `'*'` for every type. */
  readonly types: readonly Ident[] | '*';
  readonly when: Expr | null;
  readonly unless: Expr | null;
  readonly loc: SourceLocation;
}

/** `resource document { actions ...; rules }` */
export interface ResourceDecl {
  readonly kind: 'resource';
  readonly name: Ident;
  readonly actions: readonly Ident[];
  /** Locations of each `actions` clause (more than one is an error). */
  readonly actionClauses: readonly SourceLocation[];
  readonly rules: readonly RuleDecl[];
  readonly loc: SourceLocation;
}

/** `routes { GET "/api/documents/{id}" -> read document {id}  GET "/healthz" -> public }` */
export interface RoutesDecl {
  readonly kind: 'routes';
  readonly routes: readonly RouteDecl[];
  readonly loc: SourceLocation;
}

/** One route: an HTTP method (or `*`) and a path pattern, to an action on a resource type, or public. */
export interface RouteDecl {
  readonly kind: 'route';
  readonly method: Ident;
  /** The pattern as written (quotes removed); `loc` covers the quoted string. */
  readonly pattern: { readonly value: string; readonly loc: SourceLocation };
  readonly target: { readonly kind: 'public' } | { readonly kind: 'resource'; readonly action: Ident; readonly type: Ident; readonly id: Ident | null };
  readonly loc: SourceLocation;
}

export type Effect = 'permit' | 'forbid';

/** `rule name: permit read, update when ... unless ...` */
export interface RuleDecl {
  readonly kind: 'rule';
  readonly name: Ident | null;
  readonly effect: Effect;
  /** The actions the rule covers; `'*'` for all declared actions. */
  readonly actions: readonly Ident[] | '*';
  readonly when: Expr | null;
  readonly unless: Expr | null;
  readonly loc: SourceLocation;
}

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type Expr =
  | AndExpr
  | OrExpr
  | NotExpr
  | CompareExpr
  | InExpr
  | HasExpr
  | CallExpr
  | PathExpr
  | LiteralExpr
  | ListExpr;

export interface AndExpr {
  readonly kind: 'and';
  readonly args: readonly Expr[];
  readonly loc: SourceLocation;
}
export interface OrExpr {
  readonly kind: 'or';
  readonly args: readonly Expr[];
  readonly loc: SourceLocation;
}
export interface NotExpr {
  readonly kind: 'not';
  readonly arg: Expr;
  readonly loc: SourceLocation;
}
export interface CompareExpr {
  readonly kind: 'cmp';
  readonly op: CompareOp;
  readonly left: Expr;
  readonly right: Expr;
  readonly loc: SourceLocation;
}
/** `left in right`: membership of a value in a list. */
export interface InExpr {
  readonly kind: 'in';
  readonly left: Expr;
  readonly right: Expr;
  readonly loc: SourceLocation;
}
/** `left has right` / `left contains right`: a list or set holds a value. */
export interface HasExpr {
  readonly kind: 'has';
  readonly word: 'has' | 'contains';
  readonly left: Expr;
  readonly right: Expr;
  readonly loc: SourceLocation;
}
/** A method call `target.name(args)` or a function call `name(args)` (target null). */
export interface CallExpr {
  readonly kind: 'call';
  readonly target: Expr | null;
  readonly name: Ident;
  readonly args: readonly Expr[];
  readonly loc: SourceLocation;
}
/** An attribute path `root.seg.seg` or `root["seg"]`. */
export interface PathExpr {
  readonly kind: 'path';
  readonly root: Ident;
  readonly segments: readonly Ident[];
  readonly loc: SourceLocation;
}
export interface LiteralExpr {
  readonly kind: 'lit';
  readonly value: string | number | boolean;
  readonly loc: SourceLocation;
}
export interface ListExpr {
  readonly kind: 'list';
  readonly items: readonly Expr[];
  readonly loc: SourceLocation;
}
